"""Deterministic sensitivity analysis of the costing: the tornado diagram of the net benefit.

Each costing input — a TDABC resource's cost per year (its capacity cost rate), an activity's
minutes, the unit cost of a product that no activity derives — is set to the low and the high
end of its declared range (``costing/tdabc.yaml``, ``sensitivity``) with every other input at
its base value, and the incremental net monetary benefit of the primary comparison is
recomputed: INMB = λ·ΔE − ΔC. The bars are ordered by their swing (Briggs, Claxton & Sculpher,
*Decision Modelling for Health Economic Evaluation*, 2006, ch. 4).

Costs are linear in the unit costs, so the cost difference under changed unit costs is
ΔC + Σₚ (fₚ − 1)·ΔCₚ, where ΔCₚ is the (adjusted) difference in the euros spent on product p
and fₚ the factor by which the input changes p's unit cost. A product derived by TDABC changes
in proportion to its TDABC cost: fₚ = TDABCₚ(changed input) / TDABCₚ(base).

Pure functions over numpy/pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vaikuttavuus.domain.catalogue import Tdabc

__all__ = ["CostingInput", "TornadoBar", "costing_inputs", "tornado"]


@dataclass(frozen=True)
class CostingInput:
    """One input of the costing with its range: ``kind`` (``capacity_cost``, ``minutes``,
    ``unit_cost``), ``key`` (resource id, ``product:resource``, or product code), and per end of
    the range (low, high) the factor on each affected product's unit cost."""

    kind: str
    key: str
    low: float
    high: float
    factors_low: Mapping[str, float]
    factors_high: Mapping[str, float]


@dataclass(frozen=True)
class TornadoBar:
    """The net benefit with the input at the low and at the high end of its range."""

    kind: str
    key: str
    low: float
    high: float
    inmb_low: float
    inmb_high: float

    @property
    def swing(self) -> float:
        return abs(self.inmb_high - self.inmb_low)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "key": self.key,
            "low": self.low,
            "high": self.high,
            "inmb_low": self.inmb_low,
            "inmb_high": self.inmb_high,
            "swing": self.swing,
        }


def _tdabc_costs(
    tdabc: Tdabc,
    rates: Mapping[str, float],
    minutes: Mapping[tuple[str, str], float],
) -> dict[str, float]:
    costs: dict[str, float] = {}
    for activity in tdabc.activities:
        key = (activity.product, activity.resource)
        costs[activity.product] = (
            costs.get(activity.product, 0.0) + minutes[key] * rates[activity.resource]
        )
    return costs


def costing_inputs(tdabc: Tdabc | None, products: Sequence[str]) -> list[CostingInput]:
    """Every costing input with its declared range and the factors on the unit costs of the
    products it affects (``products``: the catalogue's product codes)."""
    if tdabc is None:
        ranges = None
        derived: dict[str, float] = {}
    else:
        ranges = tdabc.sensitivity
        rates = {r.id: r.rate_eur_per_minute for r in tdabc.resources}
        minutes = {(a.product, a.resource): a.minutes for a in tdabc.activities}
        derived = _tdabc_costs(tdabc, rates, minutes)
    inputs: list[CostingInput] = []
    if tdabc is not None and ranges is not None:
        for resource in tdabc.resources:
            low, high = ranges.resources.get(resource.id, ranges.capacity_cost)
            factors = {}
            for end in (low, high):
                changed = {**rates, resource.id: rates[resource.id] * end}
                costs = _tdabc_costs(tdabc, changed, minutes)
                factors[end] = {
                    p: costs[p] / derived[p]
                    for p in derived
                    if derived[p] > 0 and abs(costs[p] - derived[p]) > 1e-12
                }
            if factors[low] or factors[high]:
                inputs.append(
                    CostingInput(
                        "capacity_cost", resource.id, low, high, factors[low], factors[high]
                    )
                )
        for activity in tdabc.activities:
            low, high = ranges.minutes
            key = (activity.product, activity.resource)
            share = minutes[key] * rates[activity.resource] / derived[activity.product]
            inputs.append(
                CostingInput(
                    "minutes",
                    f"{activity.product}:{activity.resource}",
                    low,
                    high,
                    {activity.product: 1 + (low - 1) * share},
                    {activity.product: 1 + (high - 1) * share},
                )
            )
    default = ranges.unit_cost if ranges is not None else (0.8, 1.2)
    overrides = ranges.products if ranges is not None else {}
    for product in products:
        if product in derived:
            continue
        low, high = overrides.get(product, default)
        inputs.append(
            CostingInput("unit_cost", product, low, high, {product: low}, {product: high})
        )
    return inputs


def tornado(
    *,
    delta_effect: float,
    delta_cost: float,
    delta_cost_by_product: Mapping[str, float],
    wtp: float,
    inputs: Sequence[CostingInput],
    limit: int | None = None,
) -> list[TornadoBar]:
    """The tornado bars (largest swing first; inputs that change nothing are left out)."""
    bars = []
    for item in inputs:
        ends = []
        for factors in (item.factors_low, item.factors_high):
            change = sum(
                (factor - 1.0) * delta_cost_by_product.get(product, 0.0)
                for product, factor in factors.items()
            )
            ends.append(wtp * delta_effect - (delta_cost + change))
        bar = TornadoBar(item.kind, item.key, item.low, item.high, ends[0], ends[1])
        if bar.swing > 1e-9:
            bars.append(bar)
    bars.sort(key=lambda bar: bar.swing, reverse=True)
    return bars[:limit] if limit is not None else bars
