"""The declared primary analysis as people see it: the headline sentence, its tables and charts
(pilot page, cohort PDF, management PDF) and the rows of their CSV downloads.

Every number comes from :attr:`CohortAnalysis.primary
<vaikuttavuus.services.analytics.primary.PrimarySection.primary>`; the records built here are
what the tables show and what ``/pilot/<code>/tables/primary_*.csv`` and ``vaikuttavuus report
table`` write, so the page, the CSV and the PDF agree. Build views inside the locale they are
shown in.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from vaikuttavuus import plotting
from vaikuttavuus.domain.adjusted_cea import AdjustedEstimate
from vaikuttavuus.domain.primary_cea import PrimaryResult
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.cohort_view import (
    Column,
    Figure,
    Labels,
    fmt_euro,
    fmt_interval,
    fmt_number,
    fmt_probability,
    fmt_share,
    fmt_signed,
    likelihood_words,
    plain_table_view,
)

__all__ = [
    "PRIMARY_TABLES",
    "ceac_figure",
    "primary_records",
    "primary_sentence",
    "primary_view",
]

PRIMARY_TABLES = (
    "primary_estimates",
    "primary_inmb",
    "primary_ceac",
    "primary_ce_plane",
    "primary_missing",
    "primary_sensitivity",
    "primary_subgroups",
    "primary_evpi",
    "primary_tornado",
    "primary_scenarios",
)
"""The downloadable tables of the primary analysis (names of the CSV links)."""
DIGITS = {"improvement": 2, "responder": 3, "qaly": 3, "cost": 0}


# --------------------------------------------------------------------------------------------
# Records (the CSV rows and the source of the tables)
# --------------------------------------------------------------------------------------------


def _pair_row(prefix: str, estimate: AdjustedEstimate | None) -> dict[str, Any]:
    if estimate is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None, f"{prefix}_n": None}
    return {
        prefix: estimate.estimate,
        f"{prefix}_low": estimate.ci_low,
        f"{prefix}_high": estimate.ci_high,
        f"{prefix}_n": estimate.n,
    }


def _reference(analysis: CohortAnalysis, effect: str) -> float:
    return float(analysis.spec.willingness_to_pay(effect).reference)  # type: ignore[arg-type]


def _shown(analysis: CohortAnalysis, effect: str) -> list[float]:
    declared = analysis.spec.willingness_to_pay(effect)  # type: ignore[arg-type]
    return sorted({*declared.shown, declared.reference})


def primary_records(
    analysis: CohortAnalysis, name: str, effect: str | None = None
) -> list[dict[str, Any]] | None:
    """The rows of one table of the primary analysis (None when the pilot has none)."""
    result = analysis.primary
    if result is None or name not in PRIMARY_TABLES:
        return None
    if not result.available:
        return []
    effect = effect if effect in result.grids else "improvement"
    if name == "primary_estimates":
        rows = []
        for measure in ("improvement", "responder", "qaly", "cost"):
            pair = result.pair(measure)
            if pair is None:
                continue
            rows.append(
                {
                    "measure": measure,
                    **_pair_row("adjusted", pair.adjusted),
                    **_pair_row("unadjusted", pair.unadjusted),
                }
            )
        for kind in ("improvement", "qaly"):
            lam = _reference(analysis, kind)
            inmb = result.inmb_at(kind, lam)
            if inmb is None:
                continue
            adjusted_p, unadjusted_p = result.probability_at(kind, lam)
            rows.append(
                {
                    "measure": f"inmb_{kind}",
                    "wtp": lam,
                    **_pair_row("adjusted", inmb.adjusted),
                    **_pair_row("unadjusted", inmb.unadjusted),
                    "probability_adjusted": adjusted_p,
                    "probability_unadjusted": unadjusted_p,
                }
            )
        return rows
    if name == "primary_inmb":
        rows = []
        for lam in _shown(analysis, effect):
            pair = result.inmb_at(effect, lam)
            adjusted_p, unadjusted_p = result.probability_at(effect, lam)
            rows.append(
                {
                    "effect": effect,
                    "wtp": lam,
                    **_pair_row("adjusted", pair.adjusted if pair else None),
                    "probability_adjusted": adjusted_p,
                    **_pair_row("unadjusted", pair.unadjusted if pair else None),
                    "probability_unadjusted": unadjusted_p,
                }
            )
        return rows
    if name == "primary_ceac":
        return [
            {
                "effect": effect,
                "wtp": lam,
                "probability_adjusted": result.probability_at(effect, lam)[0],
                "probability_unadjusted": result.probability_at(effect, lam)[1],
            }
            for lam in result.grids.get(effect, ())
        ]
    if name == "primary_ce_plane":
        replicates = result.replicates
        if replicates is None or effect not in replicates.values:
            return []
        return [
            {"replicate": i + 1, "delta_effect": float(e), "delta_cost": float(c)}
            for i, (e, c) in enumerate(
                zip(replicates.values[effect], replicates.values["cost"], strict=True)
            )
        ]
    if name == "primary_missing":
        return [
            {
                "variable": variable,
                "arm": arm,
                "share_missing": share,
                "n_missing": result.n_missing.get(variable, {}).get(arm)
                if share is not None
                else None,
            }
            for variable, arms in result.missing.items()
            for arm, share in arms.items()
        ]
    if name == "primary_sensitivity":
        return [
            {
                "scenario": scenario.name,
                **_pair_row("delta_effect", scenario.delta_effect),
                **_pair_row("delta_cost", scenario.delta_cost),
                "wtp": scenario.wtp,
                **_pair_row("inmb", scenario.inmb),
            }
            for scenario in result.sensitivity
        ]
    if name == "primary_subgroups":
        return [
            {
                "band": group.band,
                "hidden": group.hidden,
                "n_reference": None if group.hidden else group.n_reference,
                "n_other": None if group.hidden else group.n_other,
                **_pair_row("delta_effect", None if group.hidden else group.delta_effect),
                **_pair_row("delta_cost", None if group.hidden else group.delta_cost),
                **_pair_row("inmb", None if group.hidden else group.inmb),
                "probability": None if group.hidden else group.probability,
                "interaction_p": result.interaction_p,
            }
            for group in result.subgroups
        ]
    if name == "primary_tornado":
        return [bar.to_dict() for bar in analysis.primary_tornado]
    if name == "primary_scenarios":
        return list(analysis.primary_scenarios)
    # primary_evpi
    return [
        {
            "effect": kind,
            "wtp": lam,
            "evpi_per_person": value,
            "evpi_population": result.evpi_population.get(kind, {}).get(lam),
        }
        for kind, rows in result.evpi_per_person.items()
        for lam, value in rows.items()
    ]


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------


def _measure(labels: Labels, measure: str) -> str:
    score = labels.score_short(labels.analysis.primary_plan.outcome)
    return {
        "improvement": _("Improvement in %(score)s (points)", score=score),
        "responder": _("Share with a clinically important improvement"),
        "qaly": _("QALYs"),
        "cost": _("Care-cycle cost (€)"),
        "inmb_improvement": _("Net monetary benefit per patient, %(wtp)s per point", wtp="{wtp}"),
        "inmb_qaly": _("Net monetary benefit per patient, %(wtp)s per QALY", wtp="{wtp}"),
    }.get(measure, measure)


def _scenario(name: str, labels: Labels) -> str:
    if name == "complete_cases":
        return _("Complete cases (no imputation)")
    if name.startswith("mnar_"):
        _prefix, who, delta = name.split("_", 2)
        if who == "all":
            return _("Non-responders %(delta)s points worse (both arms)", delta=delta)
        return _(
            "Non-responders %(delta)s points worse (%(arm)s only)",
            delta=delta,
            arm=labels.arm(labels.analysis.primary_plan.comparison.other)
            if labels.analysis.primary_plan.comparison
            else "",
        )
    if name == "without_proxy":
        return _("Without answers given by a proxy")
    if name == "web_only":
        return _("Web answers only")
    return name


def _variable(name: str, labels: Labels) -> str:
    if name == "cost":
        return _("Care-cycle cost")
    if "@" in name:
        score, time_point = name.split("@", 1)
        return f"{labels.score(score)}, {labels.time_point(time_point)}"
    return labels.variable(name.removeprefix("covariate:"))


def _estimate_text(estimate: AdjustedEstimate | None, digits: int, euro: bool = False) -> str:
    if estimate is None or estimate.estimate is None:
        return "–"
    value = fmt_euro(estimate.estimate) if euro else fmt_signed(estimate.estimate, digits)
    interval = fmt_interval(
        estimate.ci_low, estimate.ci_high, 0 if euro else digits, "euro" if euro else "number"
    )
    return f"{value} ({interval})"


def primary_sentence(analysis: CohortAnalysis, labels: Labels) -> str | None:
    """The answer to the pilot's decision question in plain words, from the adjusted result,
    with how sure it is (a calibrated word and the probability) and the caveat."""
    result = analysis.primary
    if result is None:
        return None
    if not result.available:
        return _reason(result)
    lam = _reference(analysis, "improvement")
    effect = result.pair("improvement")
    cost = result.pair("cost")
    probability = result.probability_at("improvement", lam)[0]
    if effect is None or cost is None or effect.adjusted.estimate is None:
        return _reason(result)
    score = labels.score_short(result.outcome)
    more = effect.adjusted.estimate >= 0
    cheaper = (cost.adjusted.estimate or 0.0) < 0
    symptom = (
        _(
            "improves %(score)s by %(points)s points more (95%% CI %(low)s to %(high)s)",
            score=score,
            points=fmt_number(abs(effect.adjusted.estimate), 1),
            low=fmt_signed(effect.adjusted.ci_low, 1),
            high=fmt_signed(effect.adjusted.ci_high, 1),
        )
        if more
        else _(
            "improves %(score)s by %(points)s points less (95%% CI %(low)s to %(high)s)",
            score=score,
            points=fmt_number(abs(effect.adjusted.estimate), 1),
            low=fmt_signed(effect.adjusted.ci_low, 1),
            high=fmt_signed(effect.adjusted.ci_high, 1),
        )
    )
    money = (
        _(
            "costs %(amount)s less per patient (95%% CI %(low)s to %(high)s)",
            amount=fmt_euro(abs(cost.adjusted.estimate or 0.0)),
            low=fmt_euro(cost.adjusted.ci_low),
            high=fmt_euro(cost.adjusted.ci_high),
        )
        if cheaper
        else _(
            "costs %(amount)s more per patient (95%% CI %(low)s to %(high)s)",
            amount=fmt_euro(abs(cost.adjusted.estimate or 0.0)),
            low=fmt_euro(cost.adjusted.ci_low),
            high=fmt_euro(cost.adjusted.ci_high),
        )
    )
    return _(
        "Adjusted for the differences between the patients, %(other)s %(symptom)s and "
        "%(money)s than %(reference)s. If one point of improvement is worth %(wtp)s, it is "
        "%(likelihood)s that %(other)s gives more value for the money. The arms were not "
        "randomised, so unmeasured differences between the patients may remain.",
        other=labels.arm(result.other),
        reference=labels.arm(result.reference),
        symptom=symptom,
        money=money,
        wtp=fmt_euro(lam),
        likelihood=likelihood_words(probability),
    )


def _reason(result: PrimaryResult) -> str:
    return {
        "too_few": _("An arm has too few persons to show the comparison."),
        "arm_filter": _("The comparison needs both arms: remove the arm filter."),
        "no_outcomes": _("Too few answers at the primary time point to compare the arms."),
        "costs_unavailable": _("The costs cannot be computed, so the comparison is not shown."),
        "not_estimable": _(
            "The comparison cannot be estimated from these data (too few persons or values "
            "that hardly vary); choose a longer period."
        ),
    }.get(result.reason or "", _("The comparison is not available."))


# --------------------------------------------------------------------------------------------
# Tables and charts
# --------------------------------------------------------------------------------------------


def primary_view(
    analysis: CohortAnalysis, labels: Labels, effect: str = "improvement"
) -> dict[str, Any]:
    """The headline and the tables and charts of the declared primary analysis."""
    result = analysis.primary
    view: dict[str, Any] = {"result": result, "sentence": primary_sentence(analysis, labels)}
    if result is None or not result.available:
        return view
    effect = effect if effect in result.grids else "improvement"
    args = {"effect": effect}
    estimates = []
    for row in primary_records(analysis, "primary_estimates") or []:
        measure = row["measure"]
        digits = DIGITS.get(measure, 0)
        euro = measure in ("cost", "inmb_improvement", "inmb_qaly")
        label = _measure(labels, measure).replace("{wtp}", fmt_euro(row.get("wtp")))
        pair = (
            result.pair(measure)
            if not measure.startswith("inmb_")
            else result.inmb_at(measure.removeprefix("inmb_"), row["wtp"])
        )
        estimates.append(
            {
                "measure": label,
                "adjusted": _estimate_text(pair.adjusted if pair else None, digits, euro),
                "unadjusted": _estimate_text(pair.unadjusted if pair else None, digits, euro),
                "probability": likelihood_words(row.get("probability_adjusted"))
                if measure.startswith("inmb_")
                else "",
                "n": f"{row['adjusted_n']} / {row['unadjusted_n']}",
            }
        )
    view["estimates"] = plain_table_view(
        estimates,
        [
            Column(
                "measure",
                _(
                    "Difference (%(other)s − %(reference)s)",
                    other=labels.arm(result.other),
                    reference=labels.arm(result.reference),
                ),
                "text",
            ),
            Column("adjusted", _("Adjusted, primary (95% CI)"), "text"),
            Column("unadjusted", _("Unadjusted (95% CI)"), "text"),
            Column("probability", _("Probability of more value for money (adjusted)"), "text"),
            Column("n", _("Persons: adjusted / unadjusted"), "text"),
        ],
        _(
            "Declared primary analysis: %(score)s at %(time_point)s",
            score=labels.score(result.outcome),
            time_point=labels.time_point(result.time_point),
        ),
        labels,
        name="primary_estimates",
        note=_(
            "Adjusted: regression standardisation for %(covariates)s, missing values imputed "
            "%(m)s times per arm, cluster-robust errors; the primary analysis. Unadjusted: "
            "plain differences of the observed values (complete cases), shown for comparison.",
            covariates=", ".join(
                _variable(c, labels) for c in result.settings.get("covariates", [])
            )
            or "–",
            m=result.settings.get("imputations") or 0,
        ),
    )
    view["inmb"] = plain_table_view(
        [
            {
                "wtp": fmt_euro(row["wtp"]),
                "adjusted": _estimate_text(_from_row(row, "adjusted"), 0, True),
                "p_adjusted": fmt_probability(row["probability_adjusted"]),
                "unadjusted": _estimate_text(_from_row(row, "unadjusted"), 0, True),
                "p_unadjusted": fmt_probability(row["probability_unadjusted"]),
            }
            for row in primary_records(analysis, "primary_inmb", effect) or []
        ],
        [
            Column(
                "wtp",
                _("Willingness to pay %(per_unit)s", per_unit=labels.per_unit(effect)),
                "text",
            ),
            Column("adjusted", _("Net benefit, adjusted (95% CI)"), "text"),
            Column("p_adjusted", _("Probability cost-effective, adjusted"), "text"),
            Column("unadjusted", _("Net benefit, unadjusted (95% CI)"), "text"),
            Column("p_unadjusted", _("Probability cost-effective, unadjusted"), "text"),
        ],
        _("Incremental net monetary benefit per patient: %(effect)s", effect=labels.effect(effect)),
        labels,
        name="primary_inmb",
        csv_args=args,
        note=_(
            "Where the willingness to pay comes from: %(source)s",
            source=analysis.spec.willingness_to_pay(effect).source.get(labels.language),  # type: ignore[arg-type]
        ),
    )
    view["plane"] = _plane(analysis, labels, result, effect, args)
    view["ceac"] = _ceac(analysis, labels, result, effect, args)
    missing_rows: dict[str, dict[str, str]] = {}
    for row in primary_records(analysis, "primary_missing") or []:
        shown = (
            "x"
            if row["share_missing"] is None
            else f"{fmt_share(row['share_missing'])} ({row['n_missing']})"
        )
        missing_rows.setdefault(row["variable"], {})[row["arm"]] = shown
    arms = [result.reference, result.other]
    view["missing"] = plain_table_view(
        [
            {"variable": _variable(variable, labels), **{arm: cells.get(arm, "–") for arm in arms}}
            for variable, cells in missing_rows.items()
        ],
        [
            Column("variable", _("Variable"), "text"),
            *[
                Column(arm, _("Missing: %(arm)s (persons)", arm=labels.arm(arm)), "text")
                for arm in arms
            ],
        ],
        _("Missing values before imputation, per variable and arm"),
        labels,
        name="primary_missing",
    )
    view["sensitivity"] = plain_table_view(
        [
            {
                "scenario": _scenario(s.name, labels),
                "effect": _estimate_text(s.delta_effect, 2),
                "cost": _estimate_text(s.delta_cost, 0, True),
                "inmb": _estimate_text(s.inmb, 0, True),
            }
            for s in result.sensitivity
        ],
        [
            Column("scenario", _("Analysis"), "text"),
            Column("effect", _("Difference in improvement (95% CI)"), "text"),
            Column("cost", _("Difference in cost (95% CI)"), "text"),
            Column(
                "inmb",
                _(
                    "Net benefit at %(wtp)s per point (95%% CI)",
                    wtp=fmt_euro(_reference(analysis, "improvement")),
                ),
                "text",
            ),
        ],
        _("Sensitivity analyses of the primary result"),
        labels,
        name="primary_sensitivity",
    )
    if result.subgroups:
        view["subgroups"] = plain_table_view(
            [
                {
                    "band": labels.band(result.outcome, g.band),
                    "n": "x" if g.hidden else f"{g.n_reference} / {g.n_other}",
                    "effect": "x" if g.hidden else _estimate_text(g.delta_effect, 2),
                    "inmb": "x" if g.hidden else _estimate_text(g.inmb, 0, True),
                    "probability": "x" if g.hidden else fmt_probability(g.probability),
                }
                for g in result.subgroups
            ],
            [
                Column("band", _("Baseline severity"), "text"),
                Column(
                    "n",
                    _(
                        "Persons (%(reference)s / %(other)s)",
                        reference=labels.arm(result.reference),
                        other=labels.arm(result.other),
                    ),
                    "text",
                ),
                Column("effect", _("Difference in improvement (95% CI)"), "text"),
                Column(
                    "inmb",
                    _(
                        "Net benefit at %(wtp)s per point (95%% CI)",
                        wtp=fmt_euro(_reference(analysis, "improvement")),
                    ),
                    "text",
                ),
                Column("probability", _("Probability cost-effective"), "text"),
            ],
            _("Subgroups by baseline severity (adjusted)"),
            labels,
            name="primary_subgroups",
            note=_(
                "Test that the net benefit differs between the severity bands: p = %(p)s. "
                "Bands with too few persons in an arm are hidden (x).",
                p="–" if result.interaction_p is None else fmt_number(result.interaction_p, 3),
            ),
        )
    view.update(costing_sensitivity_view(analysis, labels))
    if result.evpi_per_person:
        view["evpi"] = plain_table_view(
            [
                {
                    "effect": labels.effect(row["effect"]),
                    "wtp": fmt_euro(row["wtp"]),
                    "per_person": fmt_euro(row["evpi_per_person"]),
                    "population": fmt_euro(row["evpi_population"]),
                }
                for row in primary_records(analysis, "primary_evpi") or []
                if row["effect"] == effect
            ],
            [
                Column("effect", _("Effect"), "text"),
                Column("wtp", _("Willingness to pay"), "text"),
                Column("per_person", _("Per patient"), "text"),
                Column(
                    "population",
                    _(
                        "For the pilot's patients over %(years)s years",
                        years=analysis.spec.analysis.decision_horizon_years,
                    ),
                    "text",
                ),
            ],
            _(
                "Expected value of perfect information: what removing the uncertainty would "
                "be worth (%(effect)s)",
                effect=labels.effect(effect),
            ),
            labels,
            name="primary_evpi",
            note=_(
                "Population value: per patient × %(volume)s patients a year over %(years)s years, "
                "discounted at %(rate)s a year.",
                volume=analysis.spec.analysis.yearly_volume or "–",
                years=analysis.spec.analysis.decision_horizon_years,
                rate=fmt_share(analysis.spec.analysis.discount_rate, 1),
            ),
        )
    return view


def _input_label(kind: str, key: str, labels: Labels) -> str:
    if kind == "capacity_cost":
        return _("Cost of %(resource)s", resource=labels.resource(key))
    if kind == "minutes":
        product, resource = key.split(":", 1)
        return _(
            "Minutes of %(resource)s in %(product)s",
            resource=labels.resource(resource),
            product=labels.product(product),
        )
    return _("Unit cost of %(product)s", product=labels.product(key))


def costing_sensitivity_view(analysis: CohortAnalysis, labels: Labels) -> dict[str, Any]:
    """The tornado diagram of the costing inputs and the scenario table."""
    view: dict[str, Any] = {}
    lam = _reference(analysis, "improvement")
    bars = analysis.primary_tornado
    scenarios = analysis.primary_scenarios
    if bars:
        base = next((row["inmb"] for row in scenarios if row["scenario"] == "base"), 0.0)
        rows = [
            {
                "input": _input_label(bar.kind, bar.key, labels),
                "range": f"{fmt_share(bar.low)} … {fmt_share(bar.high)}",
                "low": fmt_euro(bar.inmb_low),
                "high": fmt_euro(bar.inmb_high),
                "swing": fmt_euro(bar.swing),
            }
            for bar in bars
        ]
        table = plain_table_view(
            rows,
            [
                Column("input", _("Costing input"), "text"),
                Column("range", _("Range (of the base value)"), "text"),
                Column("low", _("Net benefit at the low end"), "text"),
                Column("high", _("Net benefit at the high end"), "text"),
                Column("swing", _("Swing"), "text"),
            ],
            _(
                "Deterministic sensitivity of the costing: net benefit at %(wtp)s per point "
                "(adjusted)",
                wtp=fmt_euro(lam),
            ),
            labels,
            name="primary_tornado",
            note=_(
                "Each input is set to the ends of its range (costing/tdabc.yaml) with the others "
                "at their base values; the largest swings first."
            ),
        )
        chart = plotting.tornado_chart(
            rows=[row["input"] for row in rows],
            lows=[bar.inmb_low for bar in bars],
            highs=[bar.inmb_high for bar in bars],
            base=float(base),  # type: ignore[arg-type]
            x_label=_("Net benefit per patient (€)"),
            legend=(_("Low end of the range"), _("High end of the range")),
            alt=_(
                "Tornado diagram of the net benefit: %(values)s",
                values="; ".join(f"{r['input']} {r['low']} … {r['high']}" for r in rows),
            ),
        )
        view["tornado"] = Figure(
            chart, _("Which costing inputs move the net benefit the most"), table
        )
    if scenarios:
        view["scenarios"] = plain_table_view(
            [
                {
                    "scenario": _scenario_row(row, labels),
                    "inmb": fmt_euro(row["inmb"]),
                }
                for row in scenarios
            ],
            [
                Column("scenario", _("Scenario"), "text"),
                Column("inmb", _("Net benefit per patient (adjusted)"), "text"),
            ],
            _("Scenario analyses of the net benefit"),
            labels,
            name="primary_scenarios",
        )
    return view


def _scenario_row(row: dict[str, Any], labels: Labels) -> str:
    kind, value = row["scenario"], row["value"]
    if kind == "base":
        return _("Primary analysis (%(wtp)s per point)", wtp=fmt_euro(value))
    if kind == "wtp":
        return _("Willingness to pay %(wtp)s per point", wtp=fmt_euro(value))
    if kind == "price_year":
        return _("Costs at %(year)s prices", year=int(value))
    return _(
        "Outcome at %(time_point)s instead (complete cases)", time_point=labels.time_point(value)
    )


def _from_row(row: dict[str, Any], prefix: str) -> AdjustedEstimate | None:
    if row.get(prefix) is None:
        return None
    return AdjustedEstimate(
        row[prefix], row[f"{prefix}_low"], row[f"{prefix}_high"], row[f"{prefix}_n"] or 0, prefix
    )


def _plane(
    analysis: CohortAnalysis,
    labels: Labels,
    result: PrimaryResult,
    effect: str,
    args: dict[str, str],
) -> Figure | None:
    replicates = result.replicates
    pair = result.pair(effect)
    cost = result.pair("cost")
    if replicates is None or effect not in replicates.values or pair is None or cost is None:
        return None
    lam = _reference(analysis, effect)
    point = (pair.adjusted.estimate or 0.0, cost.adjusted.estimate or 0.0)
    unit = labels.effect_unit(effect)
    probability = result.probability_at(effect, lam)[0]
    chart = plotting.ce_plane_chart(
        delta_effect=replicates.values[effect],
        delta_cost=replicates.values["cost"],
        point=point,
        wtp=lam,
        labels={
            "x": _("Adjusted difference in effect (%(unit)s)", unit=unit),
            "y": _("Adjusted difference in cost (€)"),
            "replicates": _("Bootstrap replicates"),
            "point": _("Adjusted estimate"),
            "wtp": _(
                "%(value)s %(per_unit)s", value=fmt_euro(lam), per_unit=labels.per_unit(effect)
            ),
        },
        alt=_(
            "Adjusted cost-effectiveness plane of %(effect)s: difference in cost %(cost)s, "
            "difference in effect %(effect_difference)s; %(share)s of the replicates lie below "
            "the willingness-to-pay line.",
            effect=labels.effect(effect),
            cost=fmt_euro(point[1]),
            effect_difference=fmt_signed(point[0], DIGITS.get(effect, 2)),
            share=fmt_probability(probability),
        ),
    )
    table = plain_table_view(
        [
            {
                "statistic": _("Adjusted estimate"),
                "effect": fmt_signed(point[0], DIGITS.get(effect, 2)),
                "cost": fmt_euro(point[1]),
            },
            {
                "statistic": _("95% CI, lower limit"),
                "effect": fmt_signed(pair.adjusted.ci_low, DIGITS.get(effect, 2)),
                "cost": fmt_euro(cost.adjusted.ci_low),
            },
            {
                "statistic": _("95% CI, upper limit"),
                "effect": fmt_signed(pair.adjusted.ci_high, DIGITS.get(effect, 2)),
                "cost": fmt_euro(cost.adjusted.ci_high),
            },
        ],
        [
            Column("statistic", _("Statistic"), "text"),
            Column("effect", _("Difference in effect"), "text"),
            Column("cost", _("Difference in cost"), "text"),
        ],
        _(
            "The adjusted cost-effectiveness plane in numbers (%(n)s bootstrap replicates, "
            "every replicate refitted)",
            n=replicates.n_boot,
        ),
        labels,
        name="primary_ce_plane",
        csv_args=args,
    )
    return Figure(
        chart,
        _("Adjusted cost-effectiveness plane: %(effect)s", effect=labels.effect(effect)),
        table,
    )


def ceac_figure(analysis: CohortAnalysis, labels: Labels, effect: str) -> Figure | None:
    """The adjusted and unadjusted acceptability curve of ``effect`` with its table (the
    management summary's main figure), or None when the comparison is not available."""
    result = analysis.primary
    if result is None or not result.available:
        return None
    effect = effect if effect in result.grids else "improvement"
    return _ceac(analysis, labels, result, effect, {"effect": effect})


def _ceac(
    analysis: CohortAnalysis,
    labels: Labels,
    result: PrimaryResult,
    effect: str,
    args: dict[str, str],
) -> Figure | None:
    grid = result.grids.get(effect)
    if not grid:
        return None
    adjusted = [result.probability_at(effect, lam)[0] for lam in grid]
    unadjusted = [result.probability_at(effect, lam)[1] for lam in grid]
    curves: dict[str, list[float]] = {}
    if all(v is not None for v in adjusted):
        curves[_("Adjusted (primary)")] = [float(v) for v in adjusted]  # type: ignore[arg-type]
    if all(v is not None for v in unadjusted):
        curves[_("Unadjusted")] = [float(v) for v in unadjusted]  # type: ignore[arg-type]
    if not curves:
        return None
    shown = _shown(analysis, effect)
    rows = [
        {
            "wtp": fmt_euro(lam),
            "adjusted": fmt_probability(result.probability_at(effect, lam)[0]),
            "unadjusted": fmt_probability(result.probability_at(effect, lam)[1]),
        }
        for lam in shown
    ]
    chart = plotting.ceac_chart(
        wtp=list(grid),
        curves=curves,
        x_label=_("Willingness to pay (€ %(per_unit)s)", per_unit=labels.per_unit(effect)),
        y_label=_("Probability cost-effective (%)"),
        marker=_reference(analysis, effect),
        alt=_(
            "Cost-effectiveness acceptability curve of %(effect)s, adjusted and unadjusted: "
            "%(values)s",
            effect=labels.effect(effect),
            values="; ".join(f"{r['wtp']}: {r['adjusted']} / {r['unadjusted']}" for r in rows),
        ),
    )
    table = plain_table_view(
        rows,
        [
            Column("wtp", _("Willingness to pay"), "text"),
            Column("adjusted", _("Adjusted (primary)"), "text"),
            Column("unadjusted", _("Unadjusted"), "text"),
        ],
        _("Probability that %(other)s is cost-effective", other=labels.arm(result.other)),
        labels,
        name="primary_ceac",
        csv_args=args,
    )
    return Figure(
        chart,
        _("Cost-effectiveness acceptability curve: %(effect)s", effect=labels.effect(effect)),
        table,
    )
