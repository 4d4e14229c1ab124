"""The costing catalogue: products, cost centres, unit costs per price year, a price index and
time-driven activity-based costing (TDABC) inputs.

This is the in-memory form of the ``costing/`` folder (read by
:mod:`vaikuttavuus.definitions.costing`). A county replaces the shipped example files with its
own product-costing (tuotteistus) output; the specs here only check that the catalogue is
internally consistent:

* product, cost-centre and TDABC resource codes are unique;
* every product names a known cost centre; every unit cost and TDABC activity names a known
  product; every activity names a known resource;
* a product has at most one unit cost per price year, and costs are positive;
* price-index years are unique, and every price year used by a unit cost or by the TDABC
  inputs has an index point (otherwise those costs could never be indexed).

The cross-reference checks are in :func:`catalogue_issues` so that the loader can report each
one at the file, line and column where it occurs; :class:`CostingCatalogue` runs the same
checks when it is built directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from vaikuttavuus.domain.specs import IDENTIFIER, LocalizedText, Spec

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
"""Product and cost-centre codes: letters, digits, ``_``, ``.`` and ``-`` (as counties use)."""
CODE_MAX_LENGTH = 40
MIN_YEAR = 1900
MAX_YEAR = 2100

DIRECT_COST_PRODUCT = "DIRECT_COST"
"""The product under which a direct episode cost without a product code is reported."""
UNALLOCATED_CENTRE = "UNALLOCATED"
"""The cost centre under which a direct episode cost without a cost centre is reported."""
RESERVED_CODES: frozenset[str] = frozenset({DIRECT_COST_PRODUCT, UNALLOCATED_CENTRE})

__all__ = [
    "CODE",
    "DIRECT_COST_PRODUCT",
    "RESERVED_CODES",
    "UNALLOCATED_CENTRE",
    "CatalogueIssue",
    "CostCentre",
    "CostingCatalogue",
    "PriceIndexPoint",
    "Product",
    "Section",
    "Tdabc",
    "TdabcActivity",
    "TdabcResource",
    "UnitCost",
    "catalogue_issues",
]


class CostCentre(Spec):
    """A cost centre (kustannuspaikka), e.g. ``URO_POLI`` urology outpatient clinic."""

    code: str = Field(pattern=CODE, max_length=CODE_MAX_LENGTH)
    name: LocalizedText


class Product(Spec):
    """A product (suorite/tuote): what is counted in resource use, e.g. one OR minute."""

    code: str = Field(pattern=CODE, max_length=CODE_MAX_LENGTH)
    name: LocalizedText
    unit: str = Field(pattern=IDENTIFIER, max_length=CODE_MAX_LENGTH)
    """The unit one quantity counts: ``visit``, ``minute``, ``day``, ``item`` …"""
    cost_centre: str = Field(pattern=CODE, max_length=CODE_MAX_LENGTH)


class UnitCost(Spec):
    """Euros per product unit at the prices of ``price_year``."""

    code: str = Field(pattern=CODE, max_length=CODE_MAX_LENGTH)
    price_year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    unit_cost_eur: float = Field(gt=0, allow_inf_nan=False)


class PriceIndexPoint(Spec):
    """One year of the price index used to move costs between price years."""

    year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    index: float = Field(gt=0, allow_inf_nan=False)


class TdabcResource(Spec):
    """A resource that supplies capacity: staff group, room or equipment.

    Capacity cost rate (€/min) = ``cost_per_year_eur`` / (``theoretical_minutes`` ×
    ``practical_share``); practical capacity is usually about 80 % of theoretical (breaks,
    training, meetings, idle time between patients).
    """

    id: str = Field(pattern=IDENTIFIER)
    name: LocalizedText
    cost_per_year_eur: float = Field(gt=0, allow_inf_nan=False)
    theoretical_minutes: float = Field(gt=0, allow_inf_nan=False)
    practical_share: float = Field(default=0.8, gt=0, le=1)

    @property
    def practical_minutes(self) -> float:
        return self.theoretical_minutes * self.practical_share

    @property
    def rate_eur_per_minute(self) -> float:
        return self.cost_per_year_eur / self.practical_minutes


class TdabcActivity(Spec):
    """Minutes of one resource that one unit of a product consumes."""

    product: str = Field(pattern=CODE, max_length=CODE_MAX_LENGTH)
    resource: str = Field(pattern=IDENTIFIER)
    minutes: float = Field(gt=0, allow_inf_nan=False)


Range = tuple[float, float]


class SensitivityRanges(Spec):
    """Ranges of the deterministic sensitivity analysis (the tornado diagram of the net
    benefit), each a pair of factors on the base value (0.8, 1.2 = 20 % lower and higher):
    ``capacity_cost`` for every resource's cost per year, ``minutes`` for every activity's
    minutes, ``unit_cost`` for every product's unit cost that no TDABC activity derives; and
    per resource id (``resources``) or product code (``products``) a range of its own."""

    capacity_cost: Range = (0.85, 1.15)
    minutes: Range = (0.8, 1.2)
    unit_cost: Range = (0.8, 1.2)
    resources: dict[str, Range] = Field(default_factory=dict)
    products: dict[str, Range] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _factors(self) -> SensitivityRanges:
        ranges = [self.capacity_cost, self.minutes, self.unit_cost]
        ranges += [*self.resources.values(), *self.products.values()]
        for low, high in ranges:
            if not 0 < low <= 1 <= high:
                raise ValueError("a range is two factors: 0 < low ≤ 1 ≤ high")
        return self


class Tdabc(Spec):
    """TDABC inputs: the resources' costs at ``price_year`` prices and the activity times, and
    the ranges of the deterministic sensitivity analysis."""

    price_year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    description: LocalizedText | None = None
    resources: tuple[TdabcResource, ...] = Field(min_length=1)
    activities: tuple[TdabcActivity, ...] = ()
    sensitivity: SensitivityRanges = SensitivityRanges()

    @model_validator(mode="after")
    def _known_resources(self) -> Tdabc:
        known = {resource.id for resource in self.resources}
        unknown = sorted(set(self.sensitivity.resources) - known)
        if unknown:
            raise ValueError(f"sensitivity → resources: unknown resource(s) {', '.join(unknown)}")
        return self

    def resource(self, resource_id: str) -> TdabcResource:
        for resource in self.resources:
            if resource.id == resource_id:
                return resource
        raise KeyError(resource_id)


Section = Literal[
    "cost_centres", "products", "unit_costs", "price_index", "tdabc", "resources", "activities"
]


@dataclass(frozen=True)
class CatalogueIssue:
    """One consistency problem: the section, the entry's position in it and the field."""

    section: Section
    index: int | None
    field: str | None
    message: str
    reference: str | None = None
    """For an unknown-reference problem, the code (or year) that could not be found."""
    first_index: int | None = None
    """For a duplicate, the position of the first definition."""

    def __str__(self) -> str:
        where: str = self.section
        if self.index is not None:
            where += f"[{self.index}]"
        if self.field:
            where += f".{self.field}"
        first = (
            f" (first at {self.section}[{self.first_index}])"
            if self.first_index is not None
            else ""
        )
        return f"{where}: {self.message}{first}"


def _show(key: object) -> str:
    if isinstance(key, tuple):
        return "(" + ", ".join(str(part) for part in key) + ")"
    return str(key)


def _duplicates(
    keys: Sequence[object], section: Section, field: str, describe: str
) -> list[CatalogueIssue]:
    issues: list[CatalogueIssue] = []
    first: dict[object, int] = {}
    for position, key in enumerate(keys):
        if key in first:
            issues.append(
                CatalogueIssue(
                    section,
                    position,
                    field,
                    f"{describe} {_show(key)} is defined twice",
                    first_index=first[key],
                )
            )
        else:
            first[key] = position
    return issues


def catalogue_issues(
    cost_centres: Sequence[CostCentre],
    products: Sequence[Product],
    unit_costs: Sequence[UnitCost],
    price_index: Sequence[PriceIndexPoint],
    tdabc: Tdabc | None = None,
) -> list[CatalogueIssue]:
    """Every cross-reference and uniqueness problem of a catalogue, in file order."""
    issues: list[CatalogueIssue] = []
    issues += _duplicates([c.code for c in cost_centres], "cost_centres", "code", "cost centre")
    for position, centre in enumerate(cost_centres):
        if centre.code in RESERVED_CODES:
            issues.append(
                CatalogueIssue(
                    "cost_centres", position, "code", f"the code {centre.code} is reserved"
                )
            )
    centre_codes = {c.code for c in cost_centres}

    issues += _duplicates([p.code for p in products], "products", "code", "product")
    for position, product in enumerate(products):
        if product.code in RESERVED_CODES:
            issues.append(
                CatalogueIssue("products", position, "code", f"the code {product.code} is reserved")
            )
        if product.cost_centre not in centre_codes:
            issues.append(
                CatalogueIssue(
                    "products",
                    position,
                    "cost_centre",
                    f"unknown cost centre {product.cost_centre}",
                    product.cost_centre,
                )
            )
    product_codes = {p.code for p in products}

    index_years = {point.year for point in price_index}
    issues += _duplicates(
        [point.year for point in price_index], "price_index", "year", "the index for year"
    )

    issues += _duplicates(
        [(u.code, u.price_year) for u in unit_costs],
        "unit_costs",
        "price_year",
        "the unit cost for (product, price year)",
    )
    for position, unit_cost in enumerate(unit_costs):
        if unit_cost.code not in product_codes:
            issues.append(
                CatalogueIssue(
                    "unit_costs",
                    position,
                    "code",
                    f"unknown product {unit_cost.code}",
                    unit_cost.code,
                )
            )
        if unit_cost.price_year not in index_years:
            issues.append(
                CatalogueIssue(
                    "unit_costs",
                    position,
                    "price_year",
                    f"the price index has no value for {unit_cost.price_year}",
                    str(unit_cost.price_year),
                )
            )

    if tdabc is not None:
        if tdabc.price_year not in index_years:
            issues.append(
                CatalogueIssue(
                    "tdabc",
                    None,
                    "price_year",
                    f"the price index has no value for {tdabc.price_year}",
                    str(tdabc.price_year),
                )
            )
        issues += _duplicates([r.id for r in tdabc.resources], "resources", "id", "resource")
        resource_ids = {r.id for r in tdabc.resources}
        issues += _duplicates(
            [(a.product, a.resource) for a in tdabc.activities],
            "activities",
            "resource",
            "the activity (product, resource)",
        )
        for position, activity in enumerate(tdabc.activities):
            if activity.product not in product_codes:
                issues.append(
                    CatalogueIssue(
                        "activities",
                        position,
                        "product",
                        f"unknown product {activity.product}",
                        activity.product,
                    )
                )
            if activity.resource not in resource_ids:
                issues.append(
                    CatalogueIssue(
                        "activities",
                        position,
                        "resource",
                        f"unknown resource {activity.resource}",
                        activity.resource,
                    )
                )
        for code in tdabc.sensitivity.products:
            if code not in product_codes:
                issues.append(
                    CatalogueIssue("tdabc", None, "sensitivity", f"unknown product {code}", code)
                )
    return issues


class CostingCatalogue(Spec):
    """Products, cost centres, unit costs per price year, the price index and TDABC inputs."""

    cost_centres: tuple[CostCentre, ...] = Field(min_length=1)
    products: tuple[Product, ...] = Field(min_length=1)
    unit_costs: tuple[UnitCost, ...] = ()
    price_index: tuple[PriceIndexPoint, ...] = Field(min_length=1)
    tdabc: Tdabc | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CostingCatalogue:
        issues = catalogue_issues(
            self.cost_centres, self.products, self.unit_costs, self.price_index, self.tdabc
        )
        if issues:
            raise ValueError("; ".join(str(issue) for issue in issues))
        return self

    # -- lookups ------------------------------------------------------------------------------

    def product(self, code: str) -> Product:
        for product in self.products:
            if product.code == code:
                return product
        raise KeyError(code)

    def cost_centre(self, code: str) -> CostCentre:
        for centre in self.cost_centres:
            if centre.code == code:
                return centre
        raise KeyError(code)

    @property
    def product_codes(self) -> tuple[str, ...]:
        return tuple(product.code for product in self.products)

    @property
    def cost_centre_codes(self) -> tuple[str, ...]:
        return tuple(centre.code for centre in self.cost_centres)

    @property
    def price_years(self) -> tuple[int, ...]:
        """The price years that have unit costs, ascending."""
        return tuple(sorted({unit_cost.price_year for unit_cost in self.unit_costs}))

    def unit_cost(self, code: str, price_year: int) -> float:
        """The catalogued unit cost of ``code`` at ``price_year`` prices (no indexing)."""
        for unit_cost in self.unit_costs:
            if unit_cost.code == code and unit_cost.price_year == price_year:
                return unit_cost.unit_cost_eur
        raise KeyError((code, price_year))

    # -- frames -------------------------------------------------------------------------------

    def product_frame(self) -> pd.DataFrame:
        """One row per product: ``product_code``, ``unit``, ``cost_centre``, ``name_fi/sv/en``."""
        return pd.DataFrame(
            {
                "product_code": [p.code for p in self.products],
                "unit": [p.unit for p in self.products],
                "cost_centre": [p.cost_centre for p in self.products],
                "name_fi": [p.name.fi for p in self.products],
                "name_sv": [p.name.sv for p in self.products],
                "name_en": [p.name.en for p in self.products],
            }
        )

    def unit_cost_frame(self) -> pd.DataFrame:
        """One row per (product, price year): product_code, price_year, unit_cost_eur."""
        return pd.DataFrame(
            {
                "product_code": pd.Series([u.code for u in self.unit_costs], dtype=object),
                "price_year": pd.Series([u.price_year for u in self.unit_costs], dtype="int64"),
                "unit_cost_eur": pd.Series(
                    [u.unit_cost_eur for u in self.unit_costs], dtype="float64"
                ),
            }
        )

    def price_index_series(self) -> pd.Series:
        """The price index as a float Series indexed by year (ascending), named ``index``."""
        series = pd.Series(
            [point.index for point in self.price_index],
            index=pd.Index([point.year for point in self.price_index], name="year", dtype="int64"),
            name="index",
            dtype="float64",
        )
        return series.sort_index()
