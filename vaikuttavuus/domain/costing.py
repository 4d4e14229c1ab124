"""Episode costs from resource use × unit costs, price-year indexing and TDABC.

Pure functions over pandas frames (stdlib, numpy and pandas only; no file or database I/O).

Conventions
-----------
* **Price-year indexing.** A cost at year *a* prices is expressed at year *b* prices by
  multiplying with ``index[b] / index[a]`` (:func:`index_factor`). A year missing from the
  index is an error that names the year; nothing is extrapolated.
* **Unit-cost rule.** A service in year *y* uses the product's unit cost of the *nearest price
  year at or before y*, indexed from that price year; if the catalogue has no unit cost that
  early, the earliest price year is used instead (indexed backwards). So with unit costs for
  2024 and 2025, a 2026 service costs ``unit_cost[2025] × index[2026] / index[2025]`` at 2026
  prices and a 2023 service ``unit_cost[2024] × index[2023] / index[2024]``
  (:func:`unit_cost_lookup`).
* **Episode window.** A row belongs to a person's episode when
  ``index_date + start_days ≤ service_date ≤ index_date + end_days`` — *both ends inclusive*,
  counted in whole calendar days (any time of day is ignored). With the BPH care cycle −90 …
  +365 a service 90 days before and one 365 days after the procedure both count; 91 days
  before or 366 days after do not.
* Only the price years used and the target year need index values: a service in a year beyond
  the index is costed from the nearest earlier price year straight to the target year.
* **Episode cost** of a person = Σ quantity × unit cost (indexed to the target year) + Σ direct
  costs (indexed from their own price year), over the rows in the window. Every enrolled
  person appears in the result, with 0 € if no row falls in the window.
* A **direct cost** row carries ``amount_eur`` and ``price_year`` instead of a quantity; it is
  reported under its ``product_code`` if it has one, otherwise under ``DIRECT_COST``, and under
  its ``cost_centre``, else the product's, else ``UNALLOCATED``.
* Quantities and direct amounts must be finite and not negative. Rows are checked (known
  product and cost centre, valid quantity or amount) only when they fall in the window; rows
  outside it are counted, not costed.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import Any, cast

import numpy as np
import pandas as pd

from vaikuttavuus.domain.catalogue import (
    DIRECT_COST_PRODUCT,
    UNALLOCATED_CENTRE,
    CostingCatalogue,
    TdabcActivity,
    TdabcResource,
)

__all__ = [
    "CohortCostSummary",
    "CostingError",
    "EpisodeCosts",
    "activity_costs",
    "capacity_cost_rates",
    "cohort_cost_summary",
    "episode_costs",
    "index_costs",
    "index_factor",
    "mean_confidence_interval",
    "t_quantile",
    "tdabc_unit_costs",
    "unit_cost_lookup",
]

_SHOWN = 10  # how many offending values an error message lists
_YEAR_SPAN = 10_000  # (product position, year) packed into one integer key


class CostingError(ValueError):
    """Costing inputs that cannot be costed: a missing index year, an unknown product …"""


def _listing(values: Iterable[object]) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:_SHOWN])
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return shown + more


# --------------------------------------------------------------------------------------------
# Price-year indexing
# --------------------------------------------------------------------------------------------


def _index_lookup(years: Iterable[int], price_index: pd.Series) -> dict[int, float]:
    """``{year: index}`` for the requested years; a missing year raises :class:`CostingError`."""
    wanted = sorted({int(year) for year in years})
    known = {
        int(year): float(value) for year, value in zip(price_index.index, price_index, strict=True)
    }
    missing = [year for year in wanted if year not in known or not math.isfinite(known[year])]
    if missing:
        raise CostingError(
            f"the price index has no value for {_listing(missing)}; "
            "add the year(s) to the price index (price_index.csv)"
        )
    bad = [year for year in wanted if known[year] <= 0]
    if bad:
        raise CostingError(f"the price index must be positive; check {_listing(bad)}")
    return {year: known[year] for year in wanted}


def index_factor(from_year: int, to_year: int, price_index: pd.Series) -> float:
    """The multiplier that moves a cost from ``from_year`` to ``to_year`` prices."""
    values = _index_lookup((from_year, to_year), price_index)
    return values[int(to_year)] / values[int(from_year)]


def index_costs(
    frame: pd.DataFrame,
    year_col: str,
    amount_col: str,
    to_year: int,
    price_index: pd.Series,
) -> pd.DataFrame:
    """A copy of ``frame`` with ``amount_col`` moved to ``to_year`` prices.

    ``year_col`` holds each amount's price year; in the copy it is set to ``to_year`` so the
    frame stays self-describing. A missing amount stays missing; a missing year is an error.
    """
    for column in (year_col, amount_col):
        if column not in frame.columns:
            raise CostingError(f"the frame has no column '{column}'")
    years = frame[year_col]
    if years.isna().any():
        raise CostingError(f"'{year_col}' is missing on {int(years.isna().sum())} row(s)")
    years_int = years.astype("int64")
    lookup = _index_lookup([*years_int.unique().tolist(), to_year], price_index)
    target = lookup[int(to_year)]
    factor_of_year = pd.Series({year: target / value for year, value in lookup.items()})
    factors = years_int.map(factor_of_year).to_numpy(dtype="float64")
    out = frame.copy()
    out[amount_col] = frame[amount_col].to_numpy(dtype="float64") * factors
    out[year_col] = np.full(len(frame), int(to_year), dtype="int64")
    return out


# --------------------------------------------------------------------------------------------
# Unit costs
# --------------------------------------------------------------------------------------------


def unit_cost_lookup(
    requests: pd.DataFrame,
    unit_costs: pd.DataFrame,
    price_index: pd.Series,
    to_year: int | None = None,
) -> pd.DataFrame:
    """The unit cost of each requested (product, service year), by the module's unit-cost rule.

    ``requests`` has ``product_code`` and ``service_year`` (duplicates are fine);
    ``unit_costs`` has ``product_code``, ``price_year`` and ``unit_cost_eur`` (see
    :meth:`CostingCatalogue.unit_cost_frame`). Returns one row per distinct pair, sorted:
    ``product_code``, ``service_year``, ``price_year`` (the catalogue year used),
    ``unit_cost_eur`` (as catalogued), ``index_year`` (``to_year`` or, if ``None``, the service
    year) and ``unit_cost_indexed_eur`` (the unit cost at ``index_year`` prices).
    """
    for column in ("product_code", "service_year"):
        if column not in requests.columns:
            raise CostingError(f"the requests have no column '{column}'")
    columns = [
        "product_code",
        "service_year",
        "price_year",
        "unit_cost_eur",
        "index_year",
        "unit_cost_indexed_eur",
    ]
    pairs = requests[["product_code", "service_year"]].drop_duplicates()
    if pairs.isna().any().any():
        raise CostingError("product_code and service_year must not be missing")
    pairs = pairs.astype({"product_code": object, "service_year": "int64"})
    if pairs.empty:
        return pd.DataFrame({column: [] for column in columns})
    costs = unit_costs[["product_code", "price_year", "unit_cost_eur"]].astype(
        {"product_code": object, "price_year": "int64", "unit_cost_eur": "float64"}
    )
    unknown = sorted(set(pairs["product_code"]) - set(costs["product_code"]), key=str)
    if unknown:
        raise CostingError(f"no unit cost for product(s) {_listing(unknown)}")

    left = pairs.sort_values("service_year", kind="stable").reset_index(drop=True)
    right = costs.sort_values("price_year", kind="stable").reset_index(drop=True)
    found = pd.merge_asof(
        left,
        right,
        left_on="service_year",
        right_on="price_year",
        by="product_code",
        direction="backward",
    )
    earliest = right.drop_duplicates("product_code", keep="first").set_index("product_code")
    too_early = found["price_year"].isna()
    if too_early.any():
        codes = found.loc[too_early, "product_code"]
        found.loc[too_early, "price_year"] = codes.map(earliest["price_year"]).to_numpy()
        found.loc[too_early, "unit_cost_eur"] = codes.map(earliest["unit_cost_eur"]).to_numpy()
    found = found.astype({"price_year": "int64", "unit_cost_eur": "float64"})

    index_year = (
        found["service_year"]
        if to_year is None
        else pd.Series(np.full(len(found), int(to_year), dtype="int64"))
    )
    lookup = _index_lookup(
        [*found["price_year"].unique().tolist(), *index_year.unique().tolist()], price_index
    )
    index_values = pd.Series(lookup, dtype="float64")
    factor = (
        index_values.reindex(index_year.to_numpy()).to_numpy()
        / index_values.reindex(found["price_year"].to_numpy()).to_numpy()
    )
    found["index_year"] = index_year.to_numpy()
    found["unit_cost_indexed_eur"] = found["unit_cost_eur"].to_numpy() * factor
    return (
        found[columns]
        .sort_values(["product_code", "service_year"], kind="stable")
        .reset_index(drop=True)
    )


# --------------------------------------------------------------------------------------------
# Episode costs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeCosts:
    """Each enrolled person's episode cost at ``target_year`` prices.

    ``totals``: euros per person (Series indexed by the person id). ``by_product`` and
    ``by_cost_centre``: person × product and person × cost-centre euros (0 where nothing was
    used; columns in catalogue order, only those that occur). ``rows_costed`` rows fell in the
    window, ``rows_excluded`` fell outside it and ``rows_unenrolled`` named no enrolled person.
    """

    target_year: int
    window_days: tuple[int, int]
    totals: pd.Series
    by_product: pd.DataFrame
    by_cost_centre: pd.DataFrame
    rows_costed: int
    rows_excluded: int
    rows_unenrolled: int

    @property
    def n_persons(self) -> int:
        return len(self.totals)

    def person(self, person_id: int) -> dict[str, Any]:
        """One person's total and the non-zero parts of their breakdowns."""
        # one row per person (a unique index), so a label selects a row: a Series
        products = cast(pd.Series, self.by_product.loc[person_id])
        centres = cast(pd.Series, self.by_cost_centre.loc[person_id])
        return {
            "total_eur": float(self.totals.loc[person_id]),
            "by_product": {str(k): float(v) for k, v in products.items() if v != 0},
            "by_cost_centre": {str(k): float(v) for k, v in centres.items() if v != 0},
        }

    def summary(self, arms: pd.Series) -> CohortCostSummary:
        """:func:`cohort_cost_summary` of these costs, with the cost structure."""
        return cohort_cost_summary(
            self.totals, arms, by_product=self.by_product, by_cost_centre=self.by_cost_centre
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the person ids as text) for JSON, templates and caches."""
        return {
            "target_year": self.target_year,
            "window_days": list(self.window_days),
            "n_persons": self.n_persons,
            "rows_costed": self.rows_costed,
            "rows_excluded": self.rows_excluded,
            "rows_unenrolled": self.rows_unenrolled,
            "total_eur": float(self.totals.sum()),
            "totals": {str(k): float(v) for k, v in self.totals.items()},
        }


def _as_datetime(values: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    try:
        return pd.to_datetime(values)
    except (ValueError, TypeError) as error:
        raise CostingError(f"'{name}' must hold dates: {error}") from error


def _day_numbers(values: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 (time of day dropped)."""
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.to_numpy().astype("datetime64[D]").astype("int64")


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise CostingError(f"the {what} have no column(s) {_listing(missing)}")


def _row_labels(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    return _listing(frame.index[np.asarray(mask)].tolist())


def episode_costs(
    resource_use: pd.DataFrame,
    enrolments: pd.DataFrame,
    care_cycle_start_days: int,
    care_cycle_end_days: int,
    catalogue: CostingCatalogue,
    target_year: int,
    *,
    id_col: str = "person_id",
) -> EpisodeCosts:
    """Episode cost per person over the care-cycle window, at ``target_year`` prices.

    ``resource_use``: ``id_col``, ``service_date`` and, for resource use, ``product_code`` and
    ``quantity``; optionally ``cost_centre`` (overrides the product's) and, for direct costs,
    ``amount_eur`` and ``price_year`` (a row with ``amount_eur`` is a direct cost).
    ``enrolments``: one row per person with ``id_col`` and ``index_date``. ``id_col`` can be an
    enrolment id instead of a person id, as long as both frames use it.

    Raises :class:`CostingError` for a missing column, an enrolment without an index date or
    listed twice, an unknown product or cost centre, a product without unit costs, an invalid
    quantity or amount, or a price year missing from the index.
    """
    if care_cycle_start_days > care_cycle_end_days:
        raise CostingError("the care cycle starts after it ends")
    _require(enrolments, [id_col, "index_date"], "enrolments")
    _require(resource_use, [id_col, "service_date"], "resource-use rows")
    has_products = "product_code" in resource_use.columns
    has_direct = "amount_eur" in resource_use.columns
    if has_products:
        _require(resource_use, ["quantity"], "resource-use rows")
    if has_direct:
        _require(resource_use, ["price_year"], "direct-cost rows")
    if not has_products and not has_direct:
        raise CostingError(
            "the resource-use rows need product_code and quantity, or amount_eur and price_year"
        )

    # -- enrolments -------------------------------------------------------------------------
    duplicated = enrolments[id_col].duplicated()
    if duplicated.any():
        raise CostingError(
            f"enrolments list {id_col} more than once: "
            f"{_listing(enrolments.loc[duplicated, id_col].tolist())}"
        )
    index_dates = _as_datetime(enrolments["index_date"], "index_date")
    if index_dates.isna().any():
        raise CostingError(
            f"{int(index_dates.isna().sum())} enrolment(s) have no index_date; "
            "cost only enrolments whose index event has happened"
        )
    person_ids = pd.Index(enrolments[id_col], name=id_col)
    index_day = _day_numbers(index_dates)

    # -- window -----------------------------------------------------------------------------
    service_dates = _as_datetime(resource_use["service_date"], "service_date")
    if service_dates.isna().any():
        raise CostingError(
            f"service_date is missing on row(s) {_row_labels(resource_use, service_dates.isna())}"
        )
    position = person_ids.get_indexer(resource_use[id_col])
    enrolled = position >= 0
    offset = _day_numbers(service_dates) - np.where(enrolled, index_day[position], 0)
    in_window = enrolled & (offset >= care_cycle_start_days) & (offset <= care_cycle_end_days)
    rows_unenrolled = int((~enrolled).sum())
    rows_excluded = int((enrolled & ~in_window).sum())
    position = position[in_window]

    rows = resource_use.loc[in_window]
    n = len(rows)
    years = service_dates.loc[in_window].dt.year.to_numpy(dtype="int64")
    products = catalogue.product_codes
    centres = catalogue.cost_centre_codes

    # Products as positions in the catalogue (-1: none given); every later step works on them.
    if has_products:
        raw_products = rows["product_code"]
        product_missing = raw_products.isna().to_numpy()
        product = _positions(raw_products, products)
        unknown = (product < 0) & ~product_missing
        if unknown.any():
            raise CostingError(
                f"unknown product code(s) {_listing(sorted(set(raw_products[unknown]), key=str))}"
            )
    else:
        product_missing = np.ones(n, dtype=bool)
        product = np.full(n, -1, dtype="int64")
    direct = rows["amount_eur"].notna().to_numpy() if has_direct else np.zeros(n, dtype=bool)
    cost = np.zeros(n, dtype="float64")

    # -- resource use: quantity × unit cost ---------------------------------------------------
    use = ~direct
    if (use & product_missing).any():
        raise CostingError(
            "row(s) with neither product_code nor amount_eur: "
            f"{_row_labels(rows, use & product_missing)}"
        )
    if use.any():
        quantity = pd.to_numeric(rows["quantity"], errors="coerce").to_numpy(dtype="float64")
        bad = use & ~(np.isfinite(quantity) & (quantity >= 0))
        if bad.any():
            raise CostingError(f"quantity must be a number ≥ 0 on row(s) {_row_labels(rows, bad)}")
        # Look each distinct (product, year) up once, then spread the result over the rows.
        key = product[use] * _YEAR_SPAN + years[use]
        inverse, distinct = pd.factorize(key)
        requests = pd.DataFrame(
            {
                "product_code": np.asarray(products, dtype=object)[distinct // _YEAR_SPAN],
                "service_year": distinct % _YEAR_SPAN,
            }
        )
        lookup = unit_cost_lookup(
            requests, catalogue.unit_cost_frame(), catalogue.price_index_series(), target_year
        )
        unit = requests.merge(lookup, on=["product_code", "service_year"], how="left")[
            "unit_cost_indexed_eur"
        ].to_numpy()
        cost[use] = quantity[use] * unit[inverse]

    # -- direct costs: amount indexed from its own price year ---------------------------------
    if direct.any():
        amount = pd.to_numeric(rows["amount_eur"], errors="coerce").to_numpy(dtype="float64")
        bad = direct & ~(np.isfinite(amount) & (amount >= 0))
        if bad.any():
            raise CostingError(
                f"amount_eur must be a number ≥ 0 on row(s) {_row_labels(rows, bad)}"
            )
        price_years = pd.to_numeric(rows["price_year"], errors="coerce").to_numpy(dtype="float64")
        bad = direct & ~np.isfinite(price_years)
        if bad.any():
            raise CostingError(
                f"a direct cost needs its price_year; missing on row(s) {_row_labels(rows, bad)}"
            )
        direct_years = price_years[direct].astype("int64")
        index = _index_lookup(
            [*np.unique(direct_years).tolist(), target_year], catalogue.price_index_series()
        )
        factor = pd.Series({year: index[int(target_year)] / value for year, value in index.items()})
        cost[direct] = amount[direct] * factor.reindex(direct_years).to_numpy()

    # -- cost centre: the row's own, else the product's, else unallocated ---------------------
    product_centre = np.array(
        [centres.index(catalogue.product(code).cost_centre) for code in products]
    )
    centre = np.where(product >= 0, product_centre[np.maximum(product, 0)], len(centres))
    if "cost_centre" in rows.columns:
        raw_centres = rows["cost_centre"]
        given = _positions(raw_centres, centres)
        unknown = (given < 0) & raw_centres.notna().to_numpy()
        if unknown.any():
            raise CostingError(
                f"unknown cost centre(s) {_listing(sorted(set(raw_centres[unknown]), key=str))}"
            )
        centre = np.where(given >= 0, given, centre)

    # -- aggregate ------------------------------------------------------------------------------
    totals = pd.Series(
        np.bincount(position, weights=cost, minlength=len(person_ids)),
        index=person_ids,
        name="total_eur",
        dtype="float64",
    )
    return EpisodeCosts(
        target_year=int(target_year),
        window_days=(int(care_cycle_start_days), int(care_cycle_end_days)),
        totals=totals,
        by_product=_breakdown(
            position,
            np.where(product >= 0, product, len(products)),
            cost,
            person_ids,
            [*products, DIRECT_COST_PRODUCT],
        ),
        by_cost_centre=_breakdown(
            position, centre, cost, person_ids, [*centres, UNALLOCATED_CENTRE]
        ),
        rows_costed=n,
        rows_excluded=rows_excluded,
        rows_unenrolled=rows_unenrolled,
    )


def _positions(values: pd.Series, codes: Sequence[str]) -> np.ndarray:
    """The position of each value in ``codes``; -1 for a missing or unknown value."""
    return pd.Index(list(codes), dtype=object).get_indexer(pd.Index(values.to_numpy(dtype=object)))


def _breakdown(
    position: np.ndarray,
    category: np.ndarray,
    cost: np.ndarray,
    person_ids: pd.Index,
    labels: list[str],
) -> pd.DataFrame:
    """Person × category euros (0 where unused); only categories that occur, in label order.

    One ``bincount`` over person position × category position — no grouping of rows.
    """
    width = len(labels)
    sums = np.bincount(
        position * width + category, weights=cost, minlength=len(person_ids) * width
    ).reshape(len(person_ids), width)
    used = np.bincount(category, minlength=width) > 0
    return pd.DataFrame(
        sums[:, used],
        index=person_ids,
        columns=pd.Index([c for c, u in zip(labels, used, strict=True) if u], dtype=object),
    )


# --------------------------------------------------------------------------------------------
# Cohort summary
# --------------------------------------------------------------------------------------------


def _abs_t_cdf(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3–4)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term = total = 0.0
        if df > 1:
            term = total = math.cos(theta)
            for k in range(2, df - 1, 2):
                term *= cos2 * k / (k + 1)
                total += term
        return 2 / math.pi * (theta + math.sin(theta) * total)
    term = total = 1.0
    for k in range(1, df - 2, 2):
        term *= cos2 * k / (k + 1)
        total += term
    return math.sin(theta) * total


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile (> 0.5) of Student's t with ``df`` degrees of freedom.

    Exact (bisection on the closed-form distribution function) for df ≤ 30; the
    Cornish–Fisher expansion (A&S 26.7.5, error < 1e-7) above that.
    """
    if not 0.5 < probability < 1:
        raise ValueError("probability must be between 0.5 and 1")
    if df < 1:
        raise ValueError("df must be at least 1")
    z = NormalDist().inv_cdf(probability)
    if df > 30:
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    target = 2 * probability - 1
    low, high = z, z
    while _abs_t_cdf(high, df) < target:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if _abs_t_cdf(middle, df) < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return (low + high) / 2


def mean_confidence_interval(
    values: np.ndarray | pd.Series, level: float = 0.95
) -> tuple[float, float]:
    """t-based confidence interval of the mean; ``(nan, nan)`` with fewer than two values."""
    data = np.asarray(values, dtype="float64")
    data = data[~np.isnan(data)]
    if len(data) < 2:
        return (math.nan, math.nan)
    mean = float(data.mean())
    half = (
        t_quantile(0.5 + level / 2, len(data) - 1) * float(data.std(ddof=1)) / math.sqrt(len(data))
    )
    return (mean - half, mean + half)


@dataclass(frozen=True)
class CohortCostSummary:
    """Per arm: ``by_arm`` (index ``arm``; ``n``, ``total_eur``, ``mean_eur``, ``median_eur``,
    ``sd_eur``, ``ci_low_eur``, ``ci_high_eur``: the t interval of the mean at ``level``).

    ``by_product`` and ``by_cost_centre`` (when the breakdowns were given) are long frames with
    ``arm``, the category (``product`` / ``cost_centre``), ``total_eur``, ``mean_eur`` (per
    person of the arm) and ``share`` (of the arm's total; NaN when the arm's total is 0).
    """

    level: float
    by_arm: pd.DataFrame
    by_product: pd.DataFrame | None = None
    by_cost_centre: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            if frame is None:
                return None
            return [
                {str(k): _plain(v) for k, v in row.items()}
                for row in frame.to_dict(orient="records")
            ]

        return {
            "level": self.level,
            "by_arm": records(self.by_arm.reset_index()),
            "by_product": records(self.by_product),
            "by_cost_centre": records(self.by_cost_centre),
        }


def _plain(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if math.isnan(float(value)) else float(value)
    return value


def _aligned_arms(totals: pd.Series, arms: pd.Series) -> pd.Series:
    missing = totals.index.difference(arms.index)
    if len(missing):
        raise CostingError(f"no arm for {len(missing)} person(s): {_listing(missing.tolist())}")
    extra = arms.index.difference(totals.index)
    if len(extra):
        raise CostingError(f"no cost for {len(extra)} person(s): {_listing(extra.tolist())}")
    if arms.index.has_duplicates:
        raise CostingError("a person has more than one arm")
    aligned = arms.reindex(totals.index)
    if aligned.isna().any():
        raise CostingError(f"the arm is missing for {int(aligned.isna().sum())} person(s)")
    return aligned


def _arm_order(arms: pd.Series) -> list[Hashable]:
    if isinstance(arms.dtype, pd.CategoricalDtype):
        present = set(arms.unique())
        return [c for c in arms.cat.categories if c in present]
    return sorted(arms.unique().tolist(), key=str)


def _structure(
    breakdown: pd.DataFrame, arms: pd.Series, order: list[Hashable], category: str
) -> pd.DataFrame:
    frame = breakdown.reindex(arms.index).fillna(0.0)
    sums = frame.groupby(arms.to_numpy(), sort=False).sum()
    counts = arms.value_counts()
    pieces = []
    for arm in order:
        # pandas-stubs refuse a Hashable label (an arm may be any label of the arms Series)
        totals = sums.loc[arm]  # type: ignore[call-overload]
        n_arm = int(counts[arm])  # type: ignore[call-overload]
        arm_total = float(totals.sum())
        pieces.append(
            pd.DataFrame(
                {
                    "arm": arm,
                    category: [str(c) for c in totals.index],
                    "total_eur": totals.to_numpy(dtype="float64"),
                    "mean_eur": totals.to_numpy(dtype="float64") / n_arm,
                    "share": totals.to_numpy(dtype="float64") / arm_total
                    if arm_total
                    else np.full(len(totals), np.nan),
                }
            )
        )
    return pd.concat(pieces, ignore_index=True)


def cohort_cost_summary(
    per_person_totals: pd.Series,
    arms: pd.Series,
    *,
    by_product: pd.DataFrame | None = None,
    by_cost_centre: pd.DataFrame | None = None,
    level: float = 0.95,
) -> CohortCostSummary:
    """Per-arm cost statistics and, given the breakdowns, the cost structure per arm.

    ``per_person_totals`` and ``arms`` are Series indexed by the same person ids (``arms``
    holds the arm id; a categorical keeps its category order, otherwise arms are sorted). Every
    person must have exactly one arm and every arm entry a cost.
    """
    aligned = _aligned_arms(per_person_totals, arms)
    order = _arm_order(aligned)
    stats = []
    for arm in order:
        values = per_person_totals[aligned == arm].to_numpy(dtype="float64")
        low, high = mean_confidence_interval(values, level)
        stats.append(
            {
                "arm": arm,
                "n": len(values),
                "total_eur": float(values.sum()),
                "mean_eur": float(values.mean()),
                "median_eur": float(np.median(values)),
                "sd_eur": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "ci_low_eur": low,
                "ci_high_eur": high,
            }
        )
    by_arm = pd.DataFrame(stats).set_index("arm")
    return CohortCostSummary(
        level=level,
        by_arm=by_arm,
        by_product=None
        if by_product is None
        else _structure(by_product, aligned, order, "product"),
        by_cost_centre=None
        if by_cost_centre is None
        else _structure(by_cost_centre, aligned, order, "cost_centre"),
    )


# --------------------------------------------------------------------------------------------
# Time-driven activity-based costing
# --------------------------------------------------------------------------------------------


def capacity_cost_rates(resources: Sequence[TdabcResource]) -> pd.Series:
    """€ per minute of each resource: cost / (theoretical minutes × practical share)."""
    return pd.Series(
        [resource.rate_eur_per_minute for resource in resources],
        index=pd.Index([resource.id for resource in resources], name="resource", dtype=object),
        name="eur_per_minute",
        dtype="float64",
    )


def activity_costs(activities: Sequence[TdabcActivity], rates: pd.Series) -> pd.Series:
    """€ per product unit: Σ over the product's activities of minutes × the resource's rate."""
    unknown = sorted({a.resource for a in activities} - set(rates.index))
    if unknown:
        raise CostingError(f"no capacity cost rate for resource(s) {_listing(unknown)}")
    frame = pd.DataFrame(
        {
            "product_code": [a.product for a in activities],
            "cost": [a.minutes * float(rates[a.resource]) for a in activities],
        }
    )
    result = frame.groupby("product_code", sort=False)["cost"].sum().astype("float64")
    result.index = pd.Index(result.index.tolist(), name="product_code", dtype=object)
    result.name = "tdabc_unit_cost_eur"
    return result


def tdabc_unit_costs(catalogue: CostingCatalogue) -> pd.DataFrame:
    """TDABC cost per unit of every product with activities, beside the catalogue's unit cost.

    Both at the TDABC price year (the catalogue value by the unit-cost rule). Columns:
    ``tdabc_unit_cost_eur``, ``catalogue_unit_cost_eur`` (NaN if the product has no unit cost),
    ``difference_eur`` (TDABC − catalogue) and ``ratio`` (TDABC / catalogue); index
    ``product_code`` in catalogue order. A ratio well below 1 means the catalogue value carries
    costs (overheads, idle capacity) that the TDABC resources do not.
    """
    columns = ["tdabc_unit_cost_eur", "catalogue_unit_cost_eur", "difference_eur", "ratio"]
    tdabc = catalogue.tdabc
    if tdabc is None or not tdabc.activities:
        return pd.DataFrame(
            {column: pd.Series(dtype="float64") for column in columns},
            index=pd.Index([], name="product_code", dtype=object),
        )
    costs = activity_costs(tdabc.activities, capacity_cost_rates(tdabc.resources))
    order = [code for code in catalogue.product_codes if code in costs.index]
    costs = costs.reindex(order)
    unit_costs = catalogue.unit_cost_frame()
    costed = [code for code in order if code in set(unit_costs["product_code"])]
    lookup = unit_cost_lookup(
        pd.DataFrame({"product_code": costed, "service_year": [tdabc.price_year] * len(costed)}),
        unit_costs,
        catalogue.price_index_series(),
    ).set_index("product_code")["unit_cost_indexed_eur"]
    frame = pd.DataFrame({"tdabc_unit_cost_eur": costs})
    frame["catalogue_unit_cost_eur"] = lookup.reindex(frame.index).astype("float64")
    frame["difference_eur"] = frame["tdabc_unit_cost_eur"] - frame["catalogue_unit_cost_eur"]
    frame["ratio"] = frame["tdabc_unit_cost_eur"] / frame["catalogue_unit_cost_eur"]
    frame.index.name = "product_code"
    return frame[columns]


def costs_complete(
    enrolments: pd.DataFrame,
    cost_rows: pd.DataFrame,
    *,
    start_days: int,
    end_days: int,
    as_of: date,
    products: Sequence[str] | None = None,
    id_col: str = "enrolment_id",
) -> pd.Series:
    """Per enrolment (index ``id_col``): its costs are complete for the care cycle — the cycle
    (``start_days`` … ``end_days`` from ``index_date``) ended before ``as_of`` and at least one
    cost row lies inside it (of one of ``products`` when given: the pilot's declared rule).
    A person whose cycle ended without such a row has *missing* costs, never 0 €."""
    index = pd.to_datetime(enrolments.set_index(id_col)["index_date"])
    ended = index + pd.to_timedelta(end_days, unit="D") < pd.Timestamp(as_of)
    if cost_rows.empty:
        return ended & False
    start = index.reindex(cost_rows[id_col]).to_numpy()
    offset = (pd.to_datetime(cost_rows["service_date"]).to_numpy() - start) / np.timedelta64(1, "D")
    inside = (offset >= start_days) & (offset <= end_days)
    if products is not None:
        inside &= cost_rows["product_code"].isin(list(products)).to_numpy()
    with_rows = pd.Index(cost_rows.loc[inside, id_col].unique())
    return ended & index.index.isin(with_rows)
