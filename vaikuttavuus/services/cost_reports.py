"""Costs for pilot leads: each patient's episode cost by product and cost centre
(:func:`~vaikuttavuus.domain.costing.episode_costs` over the patient's rows), and the cohort's
cost structure per arm, which is the pilot page's: the same analytics
(:class:`~vaikuttavuus.services.analytics.CohortAnalysis`), persons, filters and small-cell
suppression, at the pilot's ``currency_year`` prices over its care-cycle window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from vaikuttavuus import queries
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.catalogue import (
    CostingCatalogue,
)
from vaikuttavuus.domain.costing import EpisodeCosts, episode_costs
from vaikuttavuus.domain.specs import PilotSpec
from vaikuttavuus.models import Enrolment, Pilot
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.catalogue import costing_catalogue
from vaikuttavuus.services.cohort_view import Labels, cost_view
from vaikuttavuus.services.definitions import pilot_spec

CHART_CENTRES = 6
"""The chart stacks the largest cost centres; the rest are shown together as one segment."""
OTHER = "__other__"
"""The chart segment of the smaller cost centres (the page labels it)."""


def _costs(
    pilot: Pilot, rows: pd.DataFrame, enrolments: pd.DataFrame, catalogue: CostingCatalogue
) -> EpisodeCosts:
    spec = pilot_spec(pilot)
    return episode_costs(
        rows,
        enrolments[["enrolment_id", "index_date"]],
        spec.care_cycle.start_days,
        spec.care_cycle.end_days,
        catalogue,
        spec.currency_year,
        id_col="enrolment_id",
    )


@dataclass(frozen=True)
class CostLabels:
    products: dict[str, str]
    units: dict[str, str]
    centres: dict[str, str]
    arms: dict[str, str]


def _labels(catalogue: CostingCatalogue, spec: PilotSpec, language: str) -> CostLabels:
    products = {p.code: p.name.get(language) for p in catalogue.products}
    centres = {c.code: c.name.get(language) for c in catalogue.cost_centres}
    return CostLabels(
        products=products,
        units={p.code: p.unit for p in catalogue.products},
        centres=centres,
        arms={arm.id: arm.name.get(language) for arm in spec.arms},
    )


# --------------------------------------------------------------------------------------------
# The cohort
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortCosts:
    """What the cohort cost page shows, from the pilot page's analytics
    (:attr:`CohortAnalysis.costs <vaikuttavuus.services.analytics.CohortAnalysis.costs>`), so
    both pages count the same persons — those whose care cycle has ended before the data
    date, within the same filters — and show the same (suppressed) figures.

    ``view``: the formatted tables of :func:`~vaikuttavuus.services.cohort_view.cost_view`
    (by arm, by cost centre, by product); ``people``: one row per person of those figures
    (pseudonym, arm, index date, episode cost; erased persons are counted but not listed);
    ``enrolled``: persons within the filters; ``ongoing``: of them, those whose care cycle
    has not ended (not in the figures); ``chart_segments``/``chart_arms``: mean euros per
    person by cost centre of the arms shown."""

    target_year: int
    window: tuple[int, int]
    min_cell_size: int
    view: dict[str, Any]
    people: pd.DataFrame
    enrolled: int
    ongoing: int
    chart_segments: dict[str, list[float]]
    chart_arms: list[str]
    labels: Labels


def cohort_costs(session: AnySession, analysis: CohortAnalysis, language: str) -> CohortCosts:
    """The cost page of ``analysis``'s pilot and filters (call inside the page's locale)."""
    labels = Labels(analysis, language)
    view = cost_view(analysis, labels)
    section = analysis.costs
    people = analysis.cost_persons
    pseudonyms = queries.cohort_pseudonyms(session, analysis.pilot.id, **analysis.filters.query())
    people = people.merge(pseudonyms, on="enrolment_id", how="inner")
    people = people[["enrolment_id", "pseudonym", "arm", "index_date", "total_eur"]]
    segments, chart_arms = _chart_data(section.by_cost_centre.records(), analysis, labels)
    enrolled = len(analysis.roster)
    return CohortCosts(
        target_year=section.target_year,
        window=section.window,
        min_cell_size=analysis.min_cell,
        view=view,
        people=people,
        enrolled=enrolled,
        ongoing=enrolled - int(analysis.cycle_complete.sum()),
        chart_segments=segments,
        chart_arms=chart_arms,
        labels=labels,
    )


def _chart_data(
    by_cost_centre: list[dict[str, Any]], analysis: CohortAnalysis, labels: Labels
) -> tuple[dict[str, list[float]], list[str]]:
    """Mean euros per person by cost centre for each arm shown (not hidden as a small cell):
    the largest centres (over all arms) one by one, the rest together under "other"."""
    shown = [r for r in by_cost_centre if r["mean_eur"] is not None]
    arms = [arm for arm in analysis.arms if any(r["arm"] == arm for r in shown)]
    if not arms:
        return {}, []
    totals: dict[str, float] = {}
    for row in shown:
        totals[row["cost_centre"]] = totals.get(row["cost_centre"], 0.0) + row["mean_eur"]
    ranked = sorted(totals, key=lambda code: -totals[code])
    kept = ranked if len(ranked) <= CHART_CENTRES + 1 else ranked[:CHART_CENTRES]
    segments: dict[str, list[float]] = {
        labels.cost_centre(code): [0.0] * len(arms) for code in kept
    }
    for row in shown:
        name = labels.cost_centre(row["cost_centre"])
        target = name if row["cost_centre"] in kept else OTHER
        segments.setdefault(target, [0.0] * len(arms))
        segments[target][arms.index(row["arm"])] += row["mean_eur"]
    return segments, [labels.arm(arm) for arm in arms]


# --------------------------------------------------------------------------------------------
# One patient
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientCosts:
    """One enrolment's episode cost: the total, its breakdowns (the domain's figures, non-zero
    parts only, largest first) and the rows read, with whether each fell in the window."""

    target_year: int
    window: tuple[date, date]
    total_eur: float
    by_product: list[dict[str, Any]]
    by_cost_centre: list[dict[str, Any]]
    rows: pd.DataFrame
    rows_costed: int
    rows_excluded: int


def patient_costs(
    session: AnySession, pilot: Pilot, enrolment: Enrolment, language: str
) -> PatientCosts:
    spec = pilot_spec(pilot)
    catalogue = costing_catalogue(session)
    labels = _labels(catalogue, spec, language)
    enrolments = pd.DataFrame(
        {"enrolment_id": [enrolment.id], "index_date": [pd.Timestamp(enrolment.index_date)]}
    )
    rows = queries.cost_rows(session, pilot.id, [enrolment.id])
    costs = _costs(pilot, rows, enrolments, catalogue)
    own = costs.person(enrolment.id)
    start = enrolment.index_date + timedelta(days=spec.care_cycle.start_days)
    end = enrolment.index_date + timedelta(days=spec.care_cycle.end_days)
    rows = rows.sort_values(["service_date", "product_code"], na_position="last")
    days = rows["service_date"].dt.date
    rows["in_window"] = (days >= start) & (days <= end)
    rows["product_label"] = [
        labels.products.get(code, code) if isinstance(code, str) else None
        for code in rows["product_code"]
    ]
    rows["unit"] = [
        labels.units.get(code) if isinstance(code, str) else None for code in rows["product_code"]
    ]

    def parts(values: dict[str, float], names: dict[str, str]) -> list[dict[str, Any]]:
        total = sum(values.values())
        return [
            {
                "code": code,
                "label": names.get(code, code),
                "eur": eur,
                "share": eur / total if total else None,
            }
            for code, eur in sorted(values.items(), key=lambda item: -item[1])
        ]

    return PatientCosts(
        target_year=costs.target_year,
        window=(start, end),
        total_eur=own["total_eur"],
        by_product=parts(own["by_product"], labels.products),
        by_cost_centre=parts(own["by_cost_centre"], labels.centres),
        rows=rows,
        rows_costed=costs.rows_costed,
        rows_excluded=costs.rows_excluded,
    )
