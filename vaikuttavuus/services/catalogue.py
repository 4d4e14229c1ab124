"""The costing catalogue in the database: load ``costing/`` into it idempotently (upserts), and
read it back as the domain's :class:`~vaikuttavuus.domain.catalogue.CostingCatalogue`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from vaikuttavuus import paths, queries
from vaikuttavuus.database import AnySession, upsert
from vaikuttavuus.definitions.costing import load_costing
from vaikuttavuus.domain import catalogue as domain
from vaikuttavuus.domain.catalogue import CostingCatalogue
from vaikuttavuus.domain.specs import LocalizedText
from vaikuttavuus.models import CostCentre, PriceIndexPoint, Product, UnitCost


def sync_costing(session: AnySession, catalogue: CostingCatalogue | None = None) -> str:
    """Upsert cost centres, products, unit costs and the price index; returns a summary line."""
    catalogue = catalogue or load_costing(paths.costing_dir())
    upsert(
        session,
        CostCentre.__table__,
        [{"code": c.code, "name": c.name.model_dump()} for c in catalogue.cost_centres],
        conflict_columns=("code",),
        update_columns=("name",),
    )
    upsert(
        session,
        Product.__table__,
        [
            {
                "code": p.code,
                "name": p.name.model_dump(),
                "unit": p.unit,
                "cost_centre_code": p.cost_centre,
            }
            for p in catalogue.products
        ],
        conflict_columns=("code",),
        update_columns=("name", "unit", "cost_centre_code"),
    )
    upsert(
        session,
        UnitCost.__table__,
        [
            {"product_code": u.code, "price_year": u.price_year, "unit_cost_eur": u.unit_cost_eur}
            for u in catalogue.unit_costs
        ],
        conflict_columns=("product_code", "price_year"),
        update_columns=("unit_cost_eur",),
    )
    upsert(
        session,
        PriceIndexPoint.__table__,
        [{"year": p.year, "index": p.index} for p in catalogue.price_index],
        conflict_columns=("year",),
        update_columns=("index",),
    )
    session.flush()
    return (
        f"costing: {len(catalogue.products)} products, {len(catalogue.unit_costs)} unit costs, "
        f"{len(catalogue.price_index)} index years"
    )


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples (pandas-stubs type their fields as any scalar; they
    have the types of the frame's columns)."""
    return frame.itertuples()


def costing_catalogue(session: AnySession) -> CostingCatalogue:
    """The catalogue as loaded into the database by ``vaikuttavuus init``."""
    tables = queries.costing_tables(session)
    return CostingCatalogue(
        cost_centres=tuple(
            domain.CostCentre(code=row.code, name=LocalizedText(**row.name))
            for row in _rows(tables["cost_centres"])
        ),
        products=tuple(
            domain.Product(
                code=row.code,
                name=LocalizedText(**row.name),
                unit=row.unit,
                cost_centre=row.cost_centre_code,
            )
            for row in _rows(tables["products"])
        ),
        unit_costs=tuple(
            domain.UnitCost(
                code=row.product_code,
                price_year=int(row.price_year),
                unit_cost_eur=float(row.unit_cost_eur),
            )
            for row in _rows(tables["unit_costs"])
        ),
        price_index=tuple(
            domain.PriceIndexPoint(year=int(row.year), index=float(row.index))
            for row in _rows(tables["price_index"])
        ),
    )
