"""The management summary of one pilot and period: key figures, the plain-language reading of
the cost-effectiveness result, and the A4 PDF (``reports/management.html``).

Everything comes from :class:`~vaikuttavuus.services.analytics.CohortAnalysis` through the
shared views of :mod:`vaikuttavuus.services.cohort_view`, so the PDF, the management page and
the pilot pages show the same (suppressed) numbers. Texts are English msgids translated with
Flask-Babel; the PDF is built inside ``force_locale`` so numbers and words follow its language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from vaikuttavuus.models import Pilot
from vaikuttavuus.services.analytics import (
    ALL,
    DEFAULT_SEED,
    CohortAnalysis,
    Filters,
    Published,
)
from vaikuttavuus.services.cohort_view import (
    Labels,
    cea_view,
    cost_view,
    enrolment_view,
    fmt_count,
    fmt_euro,
    fmt_interval,
    fmt_p,
    fmt_share,
    fmt_signed,
    outcome_view,
    quality_view,
    service_caveats,
    service_view,
    suppression_note,
)
from vaikuttavuus.services.demo_data import demo_data_present
from vaikuttavuus.services.primary_view import primary_sentence

LANGUAGES = ("fi", "sv", "en")


@dataclass(frozen=True)
class KeyFigure:
    label: str
    value: str
    detail: str = ""


def _row(records: list[dict[str, Any]], **match: object) -> dict[str, Any] | None:
    return next((r for r in records if all(r.get(k) == v for k, v in match.items())), None)


def key_figures(analysis: CohortAnalysis, labels: Labels) -> list[KeyFigure]:
    """Enrolled, response rate at the follow-up, the primary outcome per arm and the mean
    care-cycle cost per arm (all published, so small cells stay hidden)."""
    figures = []
    enrolment = analysis.enrolment.table
    shown = {
        record["arm"]: _shown_count(enrolment, position, "enrolled")
        for position, record in enumerate(enrolment.records())
    }
    per_arm = ", ".join(f"{labels.arm(arm)} {shown.get(arm, '–')}" for arm in analysis.arms)
    figures.append(KeyFigure(_("Enrolled"), shown.get(ALL, "–"), per_arm))
    follow_up = analysis.follow_up
    if follow_up is not None:
        rates = analysis.response_rates.table.records()
        rate = _row(rates, arm=ALL, time_point=follow_up)
        figures.append(
            KeyFigure(
                _("Response rate at %(time_point)s", time_point=labels.time_point(follow_up)),
                fmt_share(rate["rate"]) if rate else "–",
                _("%(answered)s answered", answered=fmt_count(rate["responded"]))
                if rate and rate["responded"] is not None
                else "",
            )
        )
        summary = analysis.outcomes.summary.records()
        for arm in analysis.arms:
            row = _row(summary, arm=arm, score=analysis.primary_score, time_point=follow_up)
            if row is None:
                continue
            figures.append(
                KeyFigure(
                    _(
                        "%(score)s, change by %(time_point)s: %(arm)s",
                        score=labels.score_short(analysis.primary_score),
                        time_point=labels.time_point(follow_up),
                        arm=labels.arm(arm),
                    ),
                    fmt_signed(row["change_mean"]),
                    _(
                        "95%% CI %(interval)s; responders %(share)s",
                        interval=fmt_interval(row["change_ci_low"], row["change_ci_high"]),
                        share=fmt_share(row.get("share_responders")),
                    ),
                )
            )
    costs = analysis.costs.by_arm.records()
    for arm in analysis.arms:
        row = _row(costs, arm=arm)
        if row is None or row["n"] is None:
            continue
        figures.append(
            KeyFigure(
                _("Mean care-cycle cost: %(arm)s", arm=labels.arm(arm)),
                fmt_euro(row["mean_eur"]),
                _(
                    "95%% CI %(interval)s; %(n)s persons",
                    interval=fmt_interval(row["ci_low_eur"], row["ci_high_eur"], kind="euro"),
                    n=fmt_count(row["n"]),
                ),
            )
        )
    return figures


def _shown_count(table: Published, position: int, column: str) -> str:
    """A published count as the tables show it: ``<5`` small, ``x`` hidden to protect a
    small one."""
    if table.is_hidden(position, column):
        return f"<{table.min_count}" if table.is_primary(position, column) else "x"
    return fmt_count(table.table[column].iloc[position])


def interpretation(analysis: CohortAnalysis, labels: Labels) -> str | None:
    """The answer to the pilot's decision question in plain words, from the declared primary
    analysis (case-mix adjusted, missing data imputed; see
    :func:`vaikuttavuus.services.primary_view.primary_sentence`). ``None`` when the pilot's
    primary analysis is not a two-arm comparison."""
    if analysis.primary is None:
        return None
    return primary_sentence(analysis, labels)


def service_highlight(analysis: CohortAnalysis, labels: Labels) -> str | None:
    """The primary question in one sentence: the service with the largest adjusted
    difference in the good direction whose multiplicity-adjusted p is below 0.05, or that no
    service stands out; plus how many secondary comparisons there are."""
    if not analysis.has_services or not analysis.service_scores:
        return None
    section = analysis.services(analysis.primary_service_score, "service_type")
    if section.error is not None:
        return None
    score = labels.score(section.score)
    time_point = labels.time_point(section.primary_time_point)
    rows = section.forest_rows()
    sign = 1.0 if section.direction == "lower_is_better" else -1.0
    clear = [
        r
        for r in rows
        if r["p_adjusted"] is not None and r["p_adjusted"] < 0.05 and sign * r["estimate"] < 0
    ]
    secondary = _(
        "%(n)s secondary comparisons (other outcomes and follow-ups) are on the pilot page.",
        n=section.n_secondary,
    )
    if not rows:
        return _(
            "Primary question (%(score)s at %(time_point)s by service): too few clients "
            "received each service to estimate it.",
            score=score,
            time_point=time_point,
        )
    if not clear:
        return (
            _(
                "Primary question (%(score)s at %(time_point)s by service): no service's "
                "adjusted difference was clearly different from 0 after adjusting for "
                "multiple comparisons.",
                score=score,
                time_point=time_point,
            )
            + " "
            + secondary
        )
    best = min(clear, key=lambda r: sign * float(r["estimate"]))
    return (
        _(
            "Primary question (%(score)s at %(time_point)s by service): the largest adjusted "
            "difference associated with a service was %(estimate)s points for %(service)s "
            "(95%% CI %(interval)s; adjusted p %(p)s) compared with comparable clients "
            "without it; %(n)s of %(total)s services differed clearly from 0. Services were "
            "not randomised, so the differences may reflect who receives them.",
            score=score,
            time_point=time_point,
            service=labels.category(best["category"], "service_type"),
            estimate=fmt_signed(best["estimate"], 2),
            interval=fmt_interval(best["ci_low"], best["ci_high"], 2),
            p=fmt_p(best["p_adjusted"]),
            n=len(clear),
            total=len(rows),
        )
        + " "
        + secondary
    )


def methods(analysis: CohortAnalysis, labels: Labels) -> list[str]:
    """The methods appendix, paragraph by paragraph."""
    spec = analysis.spec
    rule = spec.primary_outcome
    paragraphs = [
        _(
            "Persons: everyone enrolled in the pilot with an index date in the period. A "
            "follow-up counts for a person once its answering window has closed or the person "
            "has answered it; persons whose follow-up is not yet due are left out of its "
            "figures."
        ),
        _(
            "Outcomes: change = follow-up minus baseline. Means with t-based 95%% confidence "
            "intervals, shares with Wilson intervals. A responder improved by at least "
            "%(points)s points in %(score)s.",
            points=fmt_signed(rule.min_improvement, 0),
            score=labels.score(analysis.primary_score),
        ),
        _(
            "Response rate: answered invitations divided by invitations whose window has "
            "closed, including those who declined; invitations cancelled at withdrawal are "
            "left out."
        ),
    ]
    if analysis.has_procedures:
        paragraphs += [
            _(
                "Costs: resource use times unit costs from the product-costing catalogue, "
                "indexed to %(year)s prices, over the care cycle from %(start)s to %(end)s days "
                "around the index date; persons whose care cycle has ended.",
                year=spec.currency_year,
                start=spec.care_cycle.start_days,
                end=spec.care_cycle.end_days,
            ),
            _(
                "Cost-effectiveness: %(intervention)s compared with %(reference)s on "
                "patient-level data; ICER = difference in mean cost divided by difference in "
                "mean effect, reported as dominates or dominated when one arm is both cheaper "
                "and at least as effective; Fieller's interval; non-parametric bootstrap within "
                "arms (%(n)s replicates, fixed seed) for the cost-effectiveness plane and the "
                "acceptability curve; net-benefit regression adjusting for %(covariates)s.",
                intervention=labels.arm(analysis.cost_effectiveness.intervention),
                reference=labels.arm(analysis.reference_arm),
                n=fmt_count(analysis.n_boot),
                covariates=", ".join(labels.variable(c) for c in spec.covariates) or "–",
            ),
            _(
                "QALYs: area under the EQ-5D-5L index curve from baseline to the last "
                "follow-up (linear interpolation, no discounting within the first year)."
            ),
        ]
    if analysis.has_services:
        declared = spec.analysis
        plan = spec.primary_plan()
        missing = {
            "aipw_response": _(
                "missing follow-up answers by a response model within the doubly robust "
                "estimator and missing baseline scores by multiple imputation "
                "(%(m)s data sets, Rubin's rules)",
                m=declared.missing_data.imputations,
            ),
            "multiple_imputation": _(
                "missing answers by multiple imputation (%(m)s data sets, Rubin's rules)",
                m=declared.missing_data.imputations,
            ),
            "complete_cases": _("complete cases only"),
        }[declared.missing_data.method]
        paragraphs.append(
            _(
                "Services: the adjusted difference in each score at each follow-up between "
                "clients who had started a service at least %(days)s days before answering and "
                "comparable clients who had not, estimated doubly robustly (augmented inverse "
                "probability weighting: a propensity model of each service and an outcome "
                "model) and adjusted for %(covariates)s and the other services; %(missing)s. "
                "The primary question, declared in advance, is %(score)s at %(time_point)s by "
                "service type; p-values are adjusted by %(method)s within the primary and the "
                "secondary comparisons. E-values show how strong unmeasured confounding would "
                "have to be. The incremental cost per point uses the cost of the services "
                "inside the follow-up window and is not shown when the difference's interval "
                "includes 0. Services were not randomised: the differences are associations, "
                "not proof that a service changes the outcome.",
                days=declared.min_exposure_days,
                covariates=", ".join(labels.variable(c) for c in spec.covariates) or "–",
                missing=missing,
                score=labels.score(plan.outcome),
                time_point=labels.time_point(plan.time_point),
                method="Holm" if declared.multiplicity == "holm" else "Benjamini–Hochberg",
            )
        )
    paragraphs.append(suppression_note(analysis.min_cell))
    return paragraphs


def management_context(analysis: CohortAnalysis, language: str) -> dict[str, Any]:
    """Everything ``reports/management.html`` shows (call inside ``force_locale``)."""
    labels = Labels(analysis, language)
    context: dict[str, Any] = {
        "labels": labels,
        "pilot_name": labels.pilot,
        "period": analysis.filters.period,
        "as_of": analysis.as_of,
        "generated_at": datetime.now(UTC),
        "min_cell_size": analysis.min_cell,
        "key_figures": key_figures(analysis, labels),
        "interpretation": interpretation(analysis, labels),
        "service_highlight": service_highlight(analysis, labels),
        "enrolment": enrolment_view(analysis, labels),
        "quality": quality_view(analysis, labels),
        "outcomes": outcome_view(analysis, labels),
        "costs": cost_view(analysis, labels),
        "cea": None,
        "services": [],
        "service_caveats": [],
        "methods": methods(analysis, labels),
    }
    if analysis.has_procedures:
        effect = "qaly" if analysis.has_utility else "improvement"
        context["cea"] = cea_view(analysis, labels, effect)
    if analysis.has_services and analysis.service_scores:
        context["services"] = [
            service_view(analysis, labels, analysis.primary_service_score, "service_type")
        ]
        context["service_caveats"] = service_caveats(analysis)
    return context


def render_management_pdf(
    session: Session,
    pilot: Pilot,
    filters: Filters,
    language: str,
    *,
    n_boot: int | None = None,
    seed: int = DEFAULT_SEED,
    as_of: date | None = None,
) -> bytes:
    """The management summary PDF of ``pilot`` for ``filters`` in ``language``."""
    from vaikuttavuus.pdf import render_pdf

    if language not in LANGUAGES:
        raise ValueError(f"unknown language '{language}'")
    options: dict[str, Any] = {"seed": seed, "as_of": as_of}
    if n_boot is not None:
        options["n_boot"] = n_boot
    analysis = CohortAnalysis(session, pilot, filters, **options)
    with force_locale(language):
        context = management_context(analysis, language)
    context["demo_data"] = demo_data_present(session)
    return render_pdf("management.html", language, **context)


def management_overview(analysis: CohortAnalysis, language: str) -> dict[str, Any]:
    """The management page: key figures, the interpretation and the main outcome figure."""
    labels = Labels(analysis, language)
    outcomes = outcome_view(analysis, labels)
    return {
        "labels": labels,
        "key_figures": key_figures(analysis, labels),
        "interpretation": interpretation(analysis, labels),
        "service_highlight": service_highlight(analysis, labels),
        "figure": outcomes["figure"],
        "note": suppression_note(analysis.min_cell),
    }
