"""Costs for pilot leads: each patient's episode cost by product and cost centre, and the
cohort's cost structure per arm — :func:`~vaikuttavuus.domain.costing.episode_costs` and
:func:`~vaikuttavuus.domain.costing.cohort_cost_summary` over frames read in bulk, at the pilot's
``currency_year`` prices over its care-cycle window. Counts below the pilot's
``min_cell_size`` (and everything computed from them) are hidden in the cohort tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from vaikuttavuus import queries
from vaikuttavuus.domain.catalogue import (
    CostCentre,
    CostingCatalogue,
    PriceIndexPoint,
    Product,
    UnitCost,
)
from vaikuttavuus.domain.costing import CohortCostSummary, EpisodeCosts, episode_costs
from vaikuttavuus.domain.disclosure import suppress_small_cells
from vaikuttavuus.domain.specs import LocalizedText, PilotSpec
from vaikuttavuus.models import Enrolment, Pilot
from vaikuttavuus.services.definitions import pilot_spec

ARM_FIGURES = ("total_eur", "mean_eur", "median_eur", "sd_eur", "ci_low_eur", "ci_high_eur")
CHART_CENTRES = 6
"""The chart stacks the largest cost centres; the rest are shown together as one segment."""
OTHER = "__other__"
"""The chart segment of the smaller cost centres (the page labels it)."""


def costing_catalogue(session: Session) -> CostingCatalogue:
    """The catalogue as loaded into the database by ``vaikuttavuus init``."""
    tables = queries.costing_tables(session)
    return CostingCatalogue(
        cost_centres=tuple(
            CostCentre(code=row.code, name=LocalizedText(**row.name))
            for row in tables["cost_centres"].itertuples()
        ),
        products=tuple(
            Product(
                code=row.code,
                name=LocalizedText(**row.name),
                unit=row.unit,
                cost_centre=row.cost_centre_code,
            )
            for row in tables["products"].itertuples()
        ),
        unit_costs=tuple(
            UnitCost(
                code=row.product_code,
                price_year=int(row.price_year),
                unit_cost_eur=float(row.unit_cost_eur),
            )
            for row in tables["unit_costs"].itertuples()
        ),
        price_index=tuple(
            PriceIndexPoint(year=int(row.year), index=float(row.index))
            for row in tables["price_index"].itertuples()
        ),
    )


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
    """What the cohort cost page shows. ``by_arm``: the domain's per-arm statistics with small
    arms hidden (``n`` is ``None`` and every figure ``None``); ``by_product`` and
    ``by_cost_centre``: the structure of the arms that are shown; ``people``: one row per
    enrolment (pseudonym, arm, index date, total)."""

    target_year: int
    window: tuple[int, int]
    min_cell_size: int
    costs: EpisodeCosts | None
    summary: CohortCostSummary | None
    by_arm: list[dict[str, Any]]
    by_product: list[dict[str, Any]]
    by_cost_centre: list[dict[str, Any]]
    people: pd.DataFrame
    labels: CostLabels
    chart_segments: dict[str, list[float]]
    chart_arms: list[str]

    @property
    def hidden_arms(self) -> list[str]:
        return [row["arm"] for row in self.by_arm if row["hidden"]]


def cohort_costs(session: Session, pilot: Pilot, language: str) -> CohortCosts:
    spec = pilot_spec(pilot)
    catalogue = costing_catalogue(session)
    labels = _labels(catalogue, spec, language)
    enrolments = queries.cost_enrolments(session, pilot.id)
    if enrolments.empty:
        return CohortCosts(
            target_year=spec.currency_year,
            window=(spec.care_cycle.start_days, spec.care_cycle.end_days),
            min_cell_size=spec.min_cell_size,
            costs=None,
            summary=None,
            by_arm=[],
            by_product=[],
            by_cost_centre=[],
            people=enrolments.assign(total_eur=pd.Series(dtype="float64")),
            labels=labels,
            chart_segments={},
            chart_arms=[],
        )
    costs = _costs(pilot, queries.cost_rows(session, pilot.id), enrolments, catalogue)
    order = [arm.id for arm in spec.arms]
    arms = pd.Series(
        pd.Categorical(enrolments["arm"], categories=order),
        index=pd.Index(enrolments["enrolment_id"], name="enrolment_id"),
    )
    summary = costs.summary(arms)

    table = summary.by_arm.reset_index()
    table["arm"] = table["arm"].astype(str)
    hidden = suppress_small_cells(
        table,
        counts="n",
        derived={"n": list(ARM_FIGURES)},
        groups=["arm"],
        min_count=spec.min_cell_size,
        margins=False,
        suppress_zeros=False,
    ).table
    by_arm = [
        {
            "arm": row["arm"],
            "label": labels.arms.get(row["arm"], row["arm"]),
            "hidden": bool(row["suppressed"]),
            "n": None if row["suppressed"] else int(row["n"]),
            **{name: _number(row[name]) for name in ARM_FIGURES},
        }
        for row in hidden.to_dict(orient="records")
    ]
    shown = {row["arm"] for row in by_arm if not row["hidden"]}

    def structure(
        frame: pd.DataFrame | None, column: str, names: dict[str, str]
    ) -> list[dict[str, Any]]:
        if frame is None:
            return []
        rows = []
        for row in frame.to_dict(orient="records"):
            arm = str(row["arm"])
            if arm not in shown or row["total_eur"] == 0:
                continue
            code = str(row[column])
            rows.append(
                {
                    "arm": arm,
                    "arm_label": labels.arms.get(arm, arm),
                    "code": code,
                    "label": names.get(code, code),
                    "total_eur": float(row["total_eur"]),
                    "mean_eur": float(row["mean_eur"]),
                    "share": _number(row["share"]),
                }
            )
        return rows

    by_product = structure(summary.by_product, "product", labels.products)
    by_cost_centre = structure(summary.by_cost_centre, "cost_centre", labels.centres)
    segments, chart_arms = _chart_data(by_cost_centre, [a for a in order if a in shown], labels)

    people = enrolments[["enrolment_id", "pseudonym", "arm", "index_date"]].copy()
    people["total_eur"] = costs.totals.reindex(people["enrolment_id"]).to_numpy()
    return CohortCosts(
        target_year=costs.target_year,
        window=costs.window_days,
        min_cell_size=spec.min_cell_size,
        costs=costs,
        summary=summary,
        by_arm=by_arm,
        by_product=by_product,
        by_cost_centre=by_cost_centre,
        people=people,
        labels=labels,
        chart_segments=segments,
        chart_arms=chart_arms,
    )


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if np.isnan(number) else number


def _chart_data(
    by_cost_centre: list[dict[str, Any]], arms: list[str], labels: CostLabels
) -> tuple[dict[str, list[float]], list[str]]:
    """Mean euros per person by cost centre for each shown arm: the largest centres (over all
    arms) one by one, the rest together under "other"."""
    if not arms:
        return {}, []
    totals: dict[str, float] = {}
    for row in by_cost_centre:
        totals[row["label"]] = totals.get(row["label"], 0.0) + row["total_eur"]
    ranked = sorted(totals, key=lambda label: -totals[label])
    kept = ranked if len(ranked) <= CHART_CENTRES + 1 else ranked[:CHART_CENTRES]
    segments: dict[str, list[float]] = {label: [0.0] * len(arms) for label in kept}
    for row in by_cost_centre:
        target = row["label"] if row["label"] in segments else OTHER
        segments.setdefault(target, [0.0] * len(arms))
        segments[target][arms.index(row["arm"])] += row["mean_eur"]
    return segments, [labels.arms.get(arm, arm) for arm in arms]


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
    session: Session, pilot: Pilot, enrolment: Enrolment, language: str
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
