"""The costing catalogue as tables for people: products with their unit costs per price year,
the price index, and the time-driven activity-based costing (TDABC) derivation — capacity cost
rate per resource, cost of each activity and the resulting cost per product unit beside the
catalogue's unit cost.

Shown by ``vaikuttavuus costing show|tdabc`` and the read-only catalogue page. The tables are
built from the costing folder (:func:`vaikuttavuus.paths.costing_dir`, the same files that
``vaikuttavuus init`` loads), because only the folder holds the TDABC inputs. The arithmetic is
:mod:`vaikuttavuus.domain.costing`'s (:func:`capacity_cost_rates`, :func:`activity_costs`,
:func:`tdabc_unit_costs`); this module only arranges and labels its results.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus import paths
from vaikuttavuus.definitions.costing import load_costing
from vaikuttavuus.domain.catalogue import CostingCatalogue
from vaikuttavuus.domain.costing import capacity_cost_rates, tdabc_unit_costs

__all__ = [
    "CatalogueOverview",
    "TdabcOverview",
    "catalogue_overview",
    "load_catalogue",
]


def load_catalogue(directory: Path | None = None) -> CostingCatalogue:
    """The costing folder (by default the configured one), validated; raises
    :class:`~vaikuttavuus.definitions.DefinitionError` listing every problem."""
    return load_costing(directory or paths.costing_dir())


@dataclass(frozen=True)
class TdabcOverview:
    """The TDABC derivation at ``price_year`` prices.

    ``resources``: ``resource``, ``name``, ``cost_per_year_eur``, ``theoretical_minutes``,
    ``practical_share``, ``practical_minutes`` and ``eur_per_minute`` (the capacity cost rate =
    cost per year / practical minutes). ``activities``: ``product_code``, ``product_name``,
    ``resource``, ``resource_name``, ``minutes``, ``eur_per_minute`` and ``cost_eur`` (minutes ×
    rate), in file order. ``products``: ``product_code``, ``product_name``, ``unit``,
    ``tdabc_unit_cost_eur`` (Σ of its activities), ``catalogue_unit_cost_eur`` (the catalogue's
    unit cost moved to ``price_year`` by the unit-cost rule; NaN without one),
    ``difference_eur`` and ``ratio``, in catalogue order.
    """

    price_year: int
    description: str | None
    resources: pd.DataFrame
    activities: pd.DataFrame
    products: pd.DataFrame

    def derivations(self) -> list[dict[Hashable, Any]]:
        """Each product's row of :attr:`products` (as a dict) with ``activities``: its
        activity rows, for showing how the unit cost adds up."""
        lines = self.activities.to_dict(orient="records")
        result = []
        for product in self.products.to_dict(orient="records"):
            code = product["product_code"]
            result.append(
                {**product, "activities": [line for line in lines if line["product_code"] == code]}
            )
        return result


@dataclass(frozen=True)
class CatalogueOverview:
    """``products``: ``product_code``, ``name``, ``unit``, ``cost_centre``,
    ``cost_centre_name`` and one column per price year (``price_years``) with the unit cost in
    euros at that year's prices (NaN where the catalogue has none). ``price_index``: ``year``
    and ``index``. ``tdabc``: the TDABC derivation, ``None`` without TDABC inputs."""

    price_years: tuple[int, ...]
    products: pd.DataFrame
    price_index: pd.DataFrame
    tdabc: TdabcOverview | None


def catalogue_overview(catalogue: CostingCatalogue, language: str = "en") -> CatalogueOverview:
    """The catalogue's tables, with names in ``language`` (``fi``, ``sv`` or ``en``)."""
    years = catalogue.price_years
    products = pd.DataFrame(
        {
            "product_code": [p.code for p in catalogue.products],
            "name": [p.name.get(language) for p in catalogue.products],
            "unit": [p.unit for p in catalogue.products],
            "cost_centre": [p.cost_centre for p in catalogue.products],
            "cost_centre_name": [
                catalogue.cost_centre(p.cost_centre).name.get(language) for p in catalogue.products
            ],
        }
    )
    costs = catalogue.unit_cost_frame()
    wide = costs.pivot(index="product_code", columns="price_year", values="unit_cost_eur")
    for year in years:
        column = wide[year] if year in wide.columns else pd.Series(dtype="float64")
        products[year] = products["product_code"].map(column).astype("float64")
    index = catalogue.price_index_series()
    price_index = pd.DataFrame({"year": index.index.to_numpy(), "index": index.to_numpy()})
    return CatalogueOverview(
        price_years=years,
        products=products,
        price_index=price_index,
        tdabc=tdabc_overview(catalogue, language),
    )


def tdabc_overview(catalogue: CostingCatalogue, language: str = "en") -> TdabcOverview | None:
    """The TDABC derivation of ``catalogue``; ``None`` when it has no TDABC inputs."""
    tdabc = catalogue.tdabc
    if tdabc is None:
        return None
    rates = capacity_cost_rates(tdabc.resources)
    resources = pd.DataFrame(
        {
            "resource": [r.id for r in tdabc.resources],
            "name": [r.name.get(language) for r in tdabc.resources],
            "cost_per_year_eur": [r.cost_per_year_eur for r in tdabc.resources],
            "theoretical_minutes": [r.theoretical_minutes for r in tdabc.resources],
            "practical_share": [r.practical_share for r in tdabc.resources],
            "practical_minutes": [r.practical_minutes for r in tdabc.resources],
            "eur_per_minute": rates.to_numpy(),
        }
    )
    names = {p.code: p.name.get(language) for p in catalogue.products}
    units = {p.code: p.unit for p in catalogue.products}
    resource_names = dict(zip(resources["resource"], resources["name"], strict=True))
    activity_rates = np.array([float(rates[a.resource]) for a in tdabc.activities], "float64")
    minutes = np.array([a.minutes for a in tdabc.activities], dtype="float64")
    activities = pd.DataFrame(
        {
            "product_code": pd.Series([a.product for a in tdabc.activities], dtype=object),
            "product_name": pd.Series([names[a.product] for a in tdabc.activities], dtype=object),
            "resource": pd.Series([a.resource for a in tdabc.activities], dtype=object),
            "resource_name": pd.Series(
                [resource_names[a.resource] for a in tdabc.activities], dtype=object
            ),
            "minutes": minutes,
            "eur_per_minute": activity_rates,
            "cost_eur": minutes * activity_rates,
        }
    )
    unit_costs = tdabc_unit_costs(catalogue).reset_index()
    unit_costs.insert(1, "product_name", unit_costs["product_code"].map(names))
    unit_costs.insert(2, "unit", unit_costs["product_code"].map(units))
    return TdabcOverview(
        price_year=tdabc.price_year,
        description=tdabc.description.get(language) if tdabc.description else None,
        resources=resources,
        activities=activities,
        products=unit_costs,
    )
