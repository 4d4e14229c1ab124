"""The methods appendix of a pilot, item by item as CHEERS 2022 lists them (Husereau et al.,
Value Health 2022;25(1):3–9), generated from the pilot's definition and from the run — never
written by hand. The pilot page's *Methods* section, the cohort PDF's appendix and
``/pilot/<code>/tables/methods.csv`` show the same items.

Every item has a text: what the pilot declares and the analysis did, or why the item does not
apply (``tests/web/test_methods.py`` fails when an item is empty). Build inside the locale the
text is shown in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from vaikuttavuus.domain.imputation import DONORS
from vaikuttavuus.domain.specs import ValueSetScore
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.cohort_view import (
    Column,
    Labels,
    TableView,
    fmt_euro,
    fmt_probability,
    fmt_share,
)
from vaikuttavuus.services.primary_view import primary_sentence

__all__ = ["CHEERS_TOPICS", "CheersItem", "cheers_items", "methods_table"]


@dataclass(frozen=True)
class CheersItem:
    number: int
    topic: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.number, "topic": self.topic, "text": self.text}


def _topics() -> dict[int, str]:
    return {
        1: _("Title"),
        2: _("Abstract"),
        3: _("Background and objectives"),
        4: _("Health economic analysis plan"),
        5: _("Study population"),
        6: _("Setting and location"),
        7: _("Comparators"),
        8: _("Perspective"),
        9: _("Time horizon"),
        10: _("Discount rate"),
        11: _("Selection of outcomes"),
        12: _("Measurement of outcomes"),
        13: _("Valuation of outcomes"),
        14: _("Measurement and valuation of resources and costs"),
        15: _("Currency, price date and conversion"),
        16: _("Rationale and description of model"),
        17: _("Analytics and assumptions"),
        18: _("Characterising heterogeneity"),
        19: _("Characterising distributional effects"),
        20: _("Characterising uncertainty"),
        21: _("Approach to engagement with patients and others affected by the study"),
        22: _("Study parameters"),
        23: _("Summary of main results"),
        24: _("Effect of uncertainty"),
        25: _("Effect of engagement with patients and others affected by the study"),
        26: _("Study findings, limitations, generalisability and current knowledge"),
        27: _("Source of funding"),
        28: _("Conflicts of interest"),
    }


CHEERS_TOPICS = tuple(range(1, 29))
"""The 28 items of CHEERS 2022."""


def _declared(text: Any, language: str, key: str) -> str:
    if text is not None:
        return str(text.get(language))
    return _("Not declared in the pilot definition (analysis → %(key)s).", key=key)


def _instrument_text(analysis: CohortAnalysis, code: str, language: str) -> str:
    spec = analysis.instruments.get(code)
    if spec is None:
        return code
    return _(
        "%(title)s (source: %(source)s; licence: %(licence)s)",
        title=spec.title.get(language),
        source=spec.source.strip(),
        licence=spec.licence.strip(),
    )


def _utility_instrument(analysis: CohortAnalysis) -> str | None:
    """The instrument of the pilot's utility score (None without QALYs)."""
    return analysis.utility.split(".", 1)[0] if analysis.utility is not None else None


def _value_set(analysis: CohortAnalysis) -> str | None:
    code = _utility_instrument(analysis)
    spec = analysis.instruments.get(code) if code is not None else None
    if spec is None or analysis.utility is None:
        return None
    score_id = analysis.utility.split(".", 1)[1]
    for score in spec.scores:
        if isinstance(score, ValueSetScore) and score.id == score_id:
            chosen = analysis.spec.analysis.value_set or score.default_value_set
            value_set = score.value_sets.get(chosen)
            if value_set is not None:
                return f"{value_set.name}: {value_set.citation.strip()}"
    return None


def cheers_items(analysis: CohortAnalysis, labels: Labels) -> list[CheersItem]:
    """The 28 items of the pilot's methods appendix (see the module docstring)."""
    language = labels.language
    spec = analysis.spec
    declared = spec.analysis
    plan = analysis.primary_plan
    result = analysis.primary
    topics = _topics()
    name = spec.name.get(language)
    outcome = labels.score(plan.outcome)
    time_point = labels.time_point(plan.time_point)
    two_arm = plan.comparison is not None
    other = labels.arm(plan.comparison.other) if plan.comparison else ""
    reference = labels.arm(plan.comparison.reference) if plan.comparison else ""
    text: dict[int, str] = {}
    text[1] = (
        _(
            "%(pilot)s: cost-effectiveness of %(other)s compared with %(reference)s, "
            "%(outcome)s at %(time_point)s — a non-randomised comparison.",
            pilot=name,
            other=other,
            reference=reference,
            outcome=outcome,
            time_point=time_point,
        )
        if two_arm
        else _(
            "%(pilot)s: services associated with %(outcome)s at %(time_point)s — a "
            "non-randomised comparison.",
            pilot=name,
            outcome=outcome,
            time_point=time_point,
        )
    )
    text[2] = primary_sentence(analysis, labels) or _(
        "The adjusted differences associated with each service are in the services section; "
        "services were not randomised."
    )
    question = declared.question.get(language) if declared.question else ""
    description = spec.description.get(language) if spec.description else ""
    text[3] = " ".join(part for part in (question, description) if part) or _declared(
        None, language, "question"
    )
    text[4] = _(
        "The analysis is declared in the pilot definition (cohorts/%(pilot)s.yaml, version "
        "%(version)s, section 'analysis') before the data are read, and this text is generated "
        "from it and from the run of %(as_of)s.",
        pilot=spec.id,
        version=spec.version,
        as_of=analysis.as_of.isoformat(),
    )
    period = analysis.filters.period
    population = _(
        "Persons enrolled in the pilot (index event: %(event)s; index dates %(start)s – "
        "%(end)s) whose answer window at %(time_point)s has closed and whose care cycle ended "
        "before %(as_of)s, withdrawn persons included.",
        event=_("the procedure") if spec.index_event == "procedure" else _("enrolment"),
        start=period[0].isoformat() if period[0] else _("the start"),
        end=period[1].isoformat() if period[1] else analysis.as_of.isoformat(),
        time_point=time_point,
        as_of=analysis.as_of.isoformat(),
    )
    if result is not None:

        def shown(n: int) -> str:
            return f"<{analysis.min_cell}" if n < analysis.min_cell else str(n)

        population += " " + _(
            "Analysed: %(reference)s %(n_reference)s, %(other)s %(n_other)s persons.",
            reference=reference,
            n_reference=shown(result.n_reference),
            other=other,
            n_other=shown(result.n_other),
        )
    text[5] = population
    text[6] = _declared(declared.setting, language, "setting")
    comparators = ", ".join(labels.arm(arm.id) for arm in spec.arms)
    if spec.procedure_types:
        comparators += ". " + _(
            "Procedure types: %(types)s (compared without adjustment).",
            types=", ".join(labels.procedure(p.id) for p in spec.procedure_types),
        )
    if spec.service_types:
        comparators += ". " + _(
            "Services compared with not receiving them: %(types)s.",
            types=", ".join(labels.category(s.id) for s in spec.service_types),
        )
    text[7] = comparators
    text[8] = declared.perspective.get(language)
    horizon = spec.horizon_days
    text[9] = _(
        "%(days)s days from the index date (the care cycle runs from day %(start)s to day "
        "%(end)s); outcomes to %(time_point)s.",
        days=horizon,
        start=spec.care_cycle.start_days,
        end=spec.care_cycle.end_days,
        time_point=time_point,
    )
    text[10] = (
        _(
            "Not discounted: the time horizon is at most 12 months (the declared rate %(rate)s "
            "a year applies to longer horizons and to the value of information).",
            rate=fmt_share(declared.discount_rate, 1),
        )
        if horizon <= 365
        else _("%(rate)s a year for costs and QALYs.", rate=fmt_share(declared.discount_rate, 1))
    )
    rule = analysis.primary_rule if two_arm else None
    selection = _(
        "Primary: the improvement in %(outcome)s from baseline to %(time_point)s (the pilot's "
        "declared primary outcome).",
        outcome=outcome,
        time_point=time_point,
    )
    if rule is not None:
        selection += " " + _(
            "Secondary: a clinically important improvement (at least %(points)s "
            "points%(relative)s) and QALYs.",
            points=rule.min_improvement,
            relative=_(" or %(share)s", share=fmt_share(rule.min_relative))
            if rule.min_relative
            else "",
        )
    text[11] = selection
    utility = _utility_instrument(analysis)
    instruments = [plan.instrument] + ([utility] if utility is not None else [])
    text[12] = _(
        "Patient-reported: %(instruments)s, answered from a personal link, by phone or on paper "
        "at %(time_points)s (answer windows in the pilot definition).",
        instruments="; ".join(_instrument_text(analysis, code, language) for code in instruments),
        time_points=", ".join(labels.time_point(tp) for tp in analysis.time_points),
    )
    value_set = _value_set(analysis)
    if value_set and utility is not None:
        text[13] = _(
            "Health-related quality of life (%(instrument)s) valued with the value set "
            "%(value_set)s; QALYs are the area under the utility curve (linear between time "
            "points).",
            instrument=labels.score(analysis.utility),
            value_set=value_set,
        )
    elif utility is not None:
        text[13] = _(
            "Utility: %(instrument)s as recorded; QALYs are the area under the utility curve "
            "(linear between time points).",
            instrument=labels.score(analysis.utility),
        )
    else:
        text[13] = _(
            "Not applicable: the pilot has no utility instrument, so no QALYs are computed."
        )
    costs = declared.costs
    completeness = (
        _("at least one cost row inside the care cycle")
        if costs.rule == "any_row"
        else _(
            "a cost row of %(products)s inside the care cycle", products=", ".join(costs.products)
        )
    )
    text[14] = _(
        "Resource use from the county's product costing (tuotteistus: products × quantities, "
        "unit costs from the costing catalogue and time-driven activity-based costing) and "
        "direct costs, over the care cycle; client fees are not costs. A person's costs count "
        "as complete when there is %(rule)s; otherwise they are missing (imputed), never 0 €.",
        rule=completeness,
    )
    text[15] = _(
        "Euros at %(year)s prices; costs of other years converted with the price index of the "
        "costing catalogue (costing/price_index.csv). No currency conversion.",
        year=spec.currency_year,
    )
    text[16] = _(
        "Not applicable: no decision model. This is a within-pilot analysis of patient-level "
        "data from the pilot's own care cycle."
    )
    if two_arm:
        settings = result.settings if result is not None and result.available else {}
        text[17] = _(
            "Average differences (other arm minus reference) by regression standardisation "
            "(g-computation): a linear model per arm adjusted for %(covariates)s, averaged over "
            "everyone analysed; QALYs also adjusted for the baseline utility. Missing values "
            "imputed by chained equations separately per arm (statsmodels MICE, predictive "
            "mean matching with %(donors)s donors, %(m)s data sets; improvement, responder "
            "status and QALYs derived from the completed values) and combined by Rubin's rules "
            "(Barnard–Rubin degrees of freedom). Standard errors %(errors)s. Assumptions: no "
            "unmeasured confounding, values missing at random given the imputation model, and "
            "overlap of the arms.",
            covariates=", ".join(labels.variable(c) for c in spec.covariates) or "–",
            donors=DONORS,
            m=settings.get("imputations", declared.missing_data.imputations),
            errors=_("cluster-robust by %(cluster)s", cluster=declared.cluster)
            if declared.cluster != "none"
            else _("robust (sandwich)"),
        )
    else:
        text[17] = _(
            "Adjusted differences associated with each service: exposure is a service that "
            "started at least %(days)s days before the follow-up answer; the confounders "
            "%(covariates)s; the estimator as described in the services section; %(multiplicity)s "
            "adjustment of the secondary comparisons. Assumptions: no unmeasured confounding "
            "and overlap.",
            days=declared.min_exposure_days,
            covariates=", ".join(labels.variable(c) for c in spec.covariates) or "–",
            multiplicity="Holm" if declared.multiplicity == "holm" else "Benjamini–Hochberg",
        )
    text[18] = (
        _(
            "Subgroups by baseline severity band of %(outcome)s, with a test that the net "
            "benefit differs between the bands; bands with few persons are hidden.",
            outcome=outcome,
        )
        if declared.subgroups != "none"
        else _("Not analysed: no subgroups declared.")
    )
    text[19] = _(
        "Not analysed: the pilot does not declare equity-relevant groups for a distributional "
        "cost-effectiveness analysis."
    )
    n_boot = result.settings.get("n_boot") if result is not None and result.available else None
    text[20] = _(
        "95%% confidence intervals for every estimate; the cost-effectiveness plane and "
        "acceptability curve from %(n_boot)s bootstrap replicates, each refitting the models "
        "in an imputed data set; probabilities never shown as 0 %% or 100 %%; sensitivity "
        "analyses with complete cases and with non-responders %(deltas)s points worse (missing "
        "not at random); a deterministic sensitivity analysis of the costing inputs "
        "(capacity cost rates, minutes per activity, unit costs; ranges in costing/tdabc.yaml) "
        "as a tornado diagram, and scenarios of the willingness to pay, the price year and the "
        "time point; the expected value of perfect information.",
        n_boot=n_boot or analysis.n_boot,
        deltas=", ".join(f"{d:g}" for d in declared.missing_data.mnar_deltas) or "–",
    )
    text[21] = _declared(declared.engagement, language, "engagement")
    wtp = [spec.willingness_to_pay(e) for e in ("improvement", "responder", "qaly")]
    text[22] = _(
        "Covariates: %(covariates)s. Willingness to pay: %(wtp)s. Bootstrap seed %(seed)s.",
        covariates=", ".join(labels.variable(c) for c in spec.covariates) or "–",
        wtp="; ".join(
            f"{fmt_euro(w.reference)} {labels.per_unit(w.effect)} ({w.source.get(language)})"
            for w in wtp
        ),
        seed=analysis.seed,
    )
    if result is not None and result.available:
        lam = float(spec.willingness_to_pay("improvement").reference)
        inmb = result.inmb_at("improvement", lam)
        probability = result.probability_at("improvement", lam)[0]
        text[23] = _(
            "Adjusted net monetary benefit per patient at %(wtp)s per point: %(inmb)s (95%% CI "
            "%(low)s to %(high)s); probability of being cost-effective %(p)s.",
            wtp=fmt_euro(lam),
            inmb=fmt_euro(inmb.adjusted.estimate if inmb else None),
            low=fmt_euro(inmb.adjusted.ci_low if inmb else None),
            high=fmt_euro(inmb.adjusted.ci_high if inmb else None),
            p=fmt_probability(probability),
        )
        values = [s.inmb.estimate for s in result.sensitivity if s.inmb.estimate is not None]
        text[24] = (
            _(
                "Across the sensitivity analyses the net benefit at %(wtp)s per point ranged "
                "from %(low)s to %(high)s; the value of removing all uncertainty is %(evpi)s per "
                "patient.",
                wtp=fmt_euro(lam),
                low=fmt_euro(min(values)),
                high=fmt_euro(max(values)),
                evpi=fmt_euro(result.evpi_per_person.get("improvement", {}).get(lam)),
            )
            if values
            else _("No sensitivity analysis could be computed.")
        )
    elif result is not None:
        text[23] = text[24] = _(
            "Not available for these data: the comparison could not be computed (too few "
            "persons, or no answers at the primary time point)."
        )
    else:
        text[23] = _("See the services section: the primary comparison and its interval.")
        text[24] = _(
            "See the services section: the sensitivity analyses and the adjusted p-values of "
            "the secondary comparisons."
        )
    text[25] = _(
        "Engagement as described in item 21 shaped the questionnaires, not the results: "
        "%(engagement)s",
        engagement=_declared(declared.engagement, language, "engagement"),
    )
    text[26] = " ".join(_limitations(analysis, labels))
    text[27] = _declared(declared.funding, language, "funding")
    text[28] = _declared(declared.conflicts_of_interest, language, "conflicts_of_interest")
    return [CheersItem(number, topics[number], text[number]) for number in CHEERS_TOPICS]


def _limitations(analysis: CohortAnalysis, labels: Labels) -> list[str]:
    plan = analysis.primary_plan
    items = [
        _(
            "The arms or services were not randomised: the differences are associations "
            "adjusted for the declared covariates, and patients may differ in ways not measured."
        )
    ]
    result = analysis.primary
    if result is not None and result.available:
        share = result.missing.get(f"{plan.outcome}@{plan.time_point}", {})
        worst = max((s for s in share.values() if s is not None), default=None)
        if worst is not None:
            items.append(
                _(
                    "Up to %(share)s of the primary outcomes were missing; the imputation "
                    "assumes they are missing at random given the observed data.",
                    share=fmt_share(worst),
                )
            )
        if not result.settings.get("clusters"):
            items.append(
                _(
                    "Outcomes may be correlated within units or professionals; too few "
                    "clusters were known to allow for it."
                )
            )
    if len({arm.id for arm in analysis.spec.arms}) == 2 and plan.comparison is not None:
        items.append(
            _(
                "Each arm is delivered by its own units, so a difference between the arms "
                "cannot be separated from a difference between the units."
            )
        )
    items.append(
        _(
            "One wellbeing services county's pilot: other counties' patients, prices and "
            "practices may differ."
        )
    )
    return items


def methods_table(analysis: CohortAnalysis, labels: Labels) -> TableView:
    """The appendix as a table (item, topic, text) with its CSV download ``methods``."""
    from vaikuttavuus.services.cohort_view import plain_table_view

    items = cheers_items(analysis, labels)
    return plain_table_view(
        [{"item": str(i.number), "topic": i.topic, "text": i.text} for i in items],
        [
            Column("item", _("Item"), "text"),
            Column("topic", _("Topic"), "text"),
            Column("text", _("In this pilot"), "text"),
        ],
        _(
            "Methods (CHEERS 2022 reporting items), generated from the pilot definition and "
            "this run"
        ),
        labels,
        name="methods",
    )

