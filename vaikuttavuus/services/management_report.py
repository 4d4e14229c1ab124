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

from vaikuttavuus.database import read_snapshot
from vaikuttavuus.domain.loneliness import POOLED
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
    fmt_share,
    fmt_signed,
    outcome_view,
    quality_view,
    service_view,
    suppression_note,
)
from vaikuttavuus.services.demo_data import demo_data_present
from vaikuttavuus.services.primary_view import primary_sentence

LANGUAGES = ("fi", "sv", "en")
MANAGEMENT_SERVICE_SCORES = ("ucla3.total", "insecurity.safe_daily")
"""Loneliness and insecurity: the service effects the management summary shows."""


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
    """The service type with the largest adjusted reduction in loneliness (pooled), shown."""
    if not analysis.has_services or not analysis.service_scores:
        return None
    score = analysis.service_scores[0]
    section = analysis.services(score, "service_type")
    rows = section.forest_rows(POOLED)
    if not rows:
        return _("Too few persons used each service to estimate its effect.")
    sign = 1.0 if section.direction == "lower_is_better" else -1.0
    best = min(rows, key=lambda r: sign * float(r["estimate"]))
    return _(
        "Largest adjusted reduction in %(score)s: %(service)s, %(estimate)s points "
        "(95%% CI %(interval)s) compared with those without it.",
        score=labels.score(score),
        service=labels.category(best["category"], "service_type"),
        estimate=fmt_signed(best["estimate"], 2),
        interval=fmt_interval(best["ci_low"], best["ci_high"], 2),
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
        paragraphs.append(
            _(
                "Services: change in each score from baseline to 6 and 12 months, compared "
                "between persons who started a service before the first follow-up and those "
                "who did not; regression adjusted for the baseline score and %(covariates)s "
                "with person-clustered standard errors, with an inverse-probability-weighted "
                "estimate and its balance check. Cost per one-point reduction uses the costs "
                "recorded on the services.",
                covariates=", ".join(labels.variable(c) for c in spec.covariates) or "–",
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
        "methods": methods(analysis, labels),
    }
    if analysis.has_procedures:
        effect = "qaly" if analysis.has_utility else "improvement"
        context["cea"] = cea_view(analysis, labels, effect)
    if analysis.has_services:
        context["services"] = [
            service_view(analysis, labels, score, "service_type")
            for score in MANAGEMENT_SERVICE_SCORES
            if score in analysis.service_scores
        ]
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
    with read_snapshot(session):  # every figure from one moment of the data
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
