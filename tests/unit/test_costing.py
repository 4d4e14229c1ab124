"""Golden values for the pure costing functions (vaikuttavuus.domain.costing).

Most tests use a tiny hand-made catalogue with round numbers so every expected value can be
checked on paper; the shipped example catalogue is used for the BPH orders of magnitude.

Price index in the tiny catalogue: 2022 95, 2023 100, 2024 104, 2025 110, 2026 115.
Unit costs: VISIT 2023 200, 2025 250; OR_MIN 2025 20; DAY 2024 800; KIT 2023 500, 2024 520.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vaikuttavuus.definitions.costing import load_costing
from vaikuttavuus.domain.catalogue import (
    CostCentre,
    CostingCatalogue,
    PriceIndexPoint,
    Product,
    Tdabc,
    TdabcActivity,
    TdabcResource,
    UnitCost,
)
from vaikuttavuus.domain.costing import (
    CostingError,
    activity_costs,
    capacity_cost_rates,
    cohort_cost_summary,
    episode_costs,
    index_costs,
    index_factor,
    mean_confidence_interval,
    t_quantile,
    tdabc_unit_costs,
    unit_cost_lookup,
)
from vaikuttavuus.domain.specs import LocalizedText
from vaikuttavuus.paths import costing_dir

INDEX = {2022: 95.0, 2023: 100.0, 2024: 104.0, 2025: 110.0, 2026: 115.0}
UNIT_COSTS = [
    ("VISIT", 2023, 200.0),
    ("VISIT", 2025, 250.0),
    ("OR_MIN", 2025, 20.0),
    ("DAY", 2024, 800.0),
    ("KIT", 2023, 500.0),
    ("KIT", 2024, 520.0),
]


def _text(name: str) -> LocalizedText:
    return LocalizedText(fi=name, sv=name, en=name)


def tiny_catalogue(tdabc: Tdabc | None = None) -> CostingCatalogue:
    return CostingCatalogue(
        cost_centres=tuple(CostCentre(code=c, name=_text(c)) for c in ("CLINIC", "OR", "WARD")),
        products=(
            Product(code="VISIT", name=_text("Visit"), unit="visit", cost_centre="CLINIC"),
            Product(code="OR_MIN", name=_text("OR minute"), unit="minute", cost_centre="OR"),
            Product(code="DAY", name=_text("Ward day"), unit="day", cost_centre="WARD"),
            Product(code="KIT", name=_text("Kit"), unit="item", cost_centre="OR"),
            Product(code="UNPRICED", name=_text("No cost"), unit="item", cost_centre="OR"),
        ),
        unit_costs=tuple(UnitCost(code=c, price_year=y, unit_cost_eur=v) for c, y, v in UNIT_COSTS),
        price_index=tuple(PriceIndexPoint(year=y, index=v) for y, v in INDEX.items()),
        tdabc=tdabc,
    )


def index_series() -> pd.Series:
    return pd.Series(INDEX, name="index")


# -- indexing -------------------------------------------------------------------------------------


def test_index_factor() -> None:
    assert index_factor(2023, 2025, index_series()) == pytest.approx(1.10)
    assert index_factor(2025, 2023, index_series()) == pytest.approx(100 / 110)
    assert index_factor(2024, 2024, index_series()) == 1.0


def test_index_factor_missing_year_is_a_clear_error() -> None:
    with pytest.raises(CostingError, match=r"no value for 2030.*price_index.csv"):
        index_factor(2024, 2030, index_series())
    with pytest.raises(CostingError, match="2019, 2030"):
        index_factor(2019, 2030, index_series())


def test_index_costs() -> None:
    frame = pd.DataFrame(
        {"who": ["a", "b", "c"], "year": [2023, 2024, 2025], "eur": [100.0, 104.0, np.nan]}
    )
    out = index_costs(frame, "year", "eur", 2026, index_series())
    assert out["eur"].iloc[0] == pytest.approx(115.0)  # 100 × 115 / 100
    assert out["eur"].iloc[1] == pytest.approx(115.0)  # 104 × 115 / 104
    assert math.isnan(out["eur"].iloc[2])
    assert list(out["year"]) == [2026, 2026, 2026]
    assert list(out["who"]) == ["a", "b", "c"]
    assert frame["eur"].iloc[0] == 100.0  # the input is not changed


def test_index_costs_errors() -> None:
    frame = pd.DataFrame({"year": [2021], "eur": [1.0]})
    with pytest.raises(CostingError, match="2021"):
        index_costs(frame, "year", "eur", 2025, index_series())
    with pytest.raises(CostingError, match="no column 'cost'"):
        index_costs(frame, "year", "cost", 2025, index_series())
    with pytest.raises(CostingError, match="missing"):
        index_costs(
            pd.DataFrame({"year": [None], "eur": [1.0]}), "year", "eur", 2025, index_series()
        )


# -- unit-cost lookup ------------------------------------------------------------------------------


def test_unit_cost_lookup_nearest_earlier_price_year() -> None:
    catalogue = tiny_catalogue()
    requests = pd.DataFrame(
        {"product_code": ["VISIT"] * 6, "service_year": [2026, 2022, 2023, 2024, 2025, 2024]}
    )
    found = unit_cost_lookup(requests, catalogue.unit_cost_frame(), index_series())
    assert list(found["service_year"]) == [2022, 2023, 2024, 2025, 2026]  # distinct, sorted
    assert list(found["price_year"]) == [2023, 2023, 2023, 2025, 2025]
    assert list(found["unit_cost_eur"]) == [200.0, 200.0, 200.0, 250.0, 250.0]
    assert list(found["index_year"]) == [2022, 2023, 2024, 2025, 2026]
    np.testing.assert_allclose(
        found["unit_cost_indexed_eur"],
        [
            190.0,  # 2022: before the first price year → 2023's 200 × 95 / 100
            200.0,
            208.0,  # 2024: 2023's 200 × 104 / 100
            250.0,
            250 * 115 / 110,  # 2026: 2025's 250 indexed forward
        ],
    )


def test_unit_cost_lookup_to_one_price_year() -> None:
    catalogue = tiny_catalogue()
    requests = pd.DataFrame(
        {
            "product_code": ["VISIT", "VISIT", "VISIT", "DAY"],
            "service_year": [2022, 2024, 2026, 2026],
        }
    )
    found = unit_cost_lookup(requests, catalogue.unit_cost_frame(), index_series(), to_year=2025)
    by_key = found.set_index(["product_code", "service_year"])["unit_cost_indexed_eur"]
    assert by_key[("VISIT", 2022)] == pytest.approx(220.0)  # 200 × 110 / 100
    assert by_key[("VISIT", 2024)] == pytest.approx(220.0)
    assert by_key[("VISIT", 2026)] == pytest.approx(250.0)
    assert by_key[("DAY", 2026)] == pytest.approx(800 * 110 / 104)
    assert set(found["index_year"]) == {2025}


def test_unit_cost_lookup_errors() -> None:
    catalogue = tiny_catalogue()
    with pytest.raises(CostingError, match=r"no unit cost for product.*UNPRICED"):
        unit_cost_lookup(
            pd.DataFrame({"product_code": ["UNPRICED"], "service_year": [2025]}),
            catalogue.unit_cost_frame(),
            index_series(),
        )
    with pytest.raises(CostingError, match="2027"):
        unit_cost_lookup(
            pd.DataFrame({"product_code": ["VISIT"], "service_year": [2027]}),
            catalogue.unit_cost_frame(),
            index_series(),
        )
    empty = unit_cost_lookup(
        pd.DataFrame({"product_code": [], "service_year": []}),
        catalogue.unit_cost_frame(),
        index_series(),
    )
    assert empty.empty and "unit_cost_indexed_eur" in empty.columns


# -- episode costs --------------------------------------------------------------------------------

P1_INDEX = pd.Timestamp("2024-06-01")
P2_INDEX = pd.Timestamp("2025-01-10")


def _day(index: pd.Timestamp, days: int, time: str = "00:00") -> pd.Timestamp:
    return index + pd.Timedelta(days=days) + pd.Timedelta(time + ":00")


def golden_rows() -> pd.DataFrame:
    nan = np.nan
    rows = [
        # person, product, quantity, date, amount, price year, cost centre
        (1, "VISIT", 1, _day(P1_INDEX, -90), nan, nan, nan),  # first day of the window
        (1, "VISIT", 1, _day(P1_INDEX, -91), nan, nan, nan),  # one day early: out
        (1, "OR_MIN", 60, _day(P1_INDEX, 0, "08:15"), nan, nan, nan),
        (1, "DAY", 1.5, _day(P1_INDEX, 1), nan, nan, nan),
        (1, "KIT", 1, _day(P1_INDEX, 0), nan, nan, nan),
        (1, "VISIT", 1, _day(P1_INDEX, 365, "23:30"), nan, nan, nan),  # last day: in
        (1, "VISIT", 1, _day(P1_INDEX, 366), nan, nan, nan),  # one day late: out
        (1, nan, nan, _day(P1_INDEX, 10), 1000.0, 2023, nan),  # direct cost
        (1, "KIT", nan, _day(P1_INDEX, 2), 300.0, 2025, "WARD"),  # direct, product + centre
        (2, "VISIT", 2, _day(P2_INDEX, 360), nan, nan, nan),
        (2, "OR_MIN", 30, _day(P2_INDEX, 0), nan, nan, nan),
        (99, "VISIT", 1, _day(P2_INDEX, 0), nan, nan, nan),  # not enrolled
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "person_id",
            "product_code",
            "quantity",
            "service_date",
            "amount_eur",
            "price_year",
            "cost_centre",
        ],
    )


def golden_enrolments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [1, 2, 3],
            "index_date": [P1_INDEX, P2_INDEX, pd.Timestamp("2025-02-01")],
        }
    )


# Worked by hand, at 2025 prices:
# P1: VISIT −90 d (2024 → 2023 price) 200 × 110/100 = 220
#     OR_MIN 60 × (2024 → before the first price year → 2025 price 20) = 1 200
#     DAY 1.5 × 800 × 110/104 = 1 269.230769…
#     KIT 2024 price 520 × 110/104 = 550
#     VISIT +365 d (2025) = 250
#     direct 1 000 (2023 prices) × 110/100 = 1 100; direct KIT 300 (2025) = 300
# P2: VISIT 2 × (2026 → 2025 price) 250 = 500; OR_MIN 30 × 20 = 600
DAY_COST = 1.5 * 800 * 110 / 104
P1_TOTAL = 220 + 1200 + DAY_COST + 550 + 250 + 1100 + 300
P2_TOTAL = 1100.0


def test_episode_costs_golden_values() -> None:
    result = episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    assert result.target_year == 2025
    assert result.window_days == (-90, 365)
    assert list(result.totals.index) == [1, 2, 3]
    assert result.totals.index.name == "person_id"
    np.testing.assert_allclose(result.totals.to_numpy(), [P1_TOTAL, P2_TOTAL, 0.0])
    assert result.rows_costed == 9
    assert result.rows_excluded == 2
    assert result.rows_unenrolled == 1
    assert result.n_persons == 3


def test_episode_cost_breakdowns() -> None:
    result = episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    by_product = result.by_product
    # catalogue order, only products that occur, direct costs last
    assert list(by_product.columns) == ["VISIT", "OR_MIN", "DAY", "KIT", "DIRECT_COST"]
    expected_products = pd.DataFrame(
        {
            "VISIT": [470.0, 500.0, 0.0],
            "OR_MIN": [1200.0, 600.0, 0.0],
            "DAY": [DAY_COST, 0.0, 0.0],
            "KIT": [850.0, 0.0, 0.0],
            "DIRECT_COST": [1100.0, 0.0, 0.0],
        },
        index=pd.Index([1, 2, 3], name="person_id"),
    )
    pd.testing.assert_frame_equal(by_product, expected_products, check_column_type=False)
    expected_centres = pd.DataFrame(
        {
            "CLINIC": [470.0, 500.0, 0.0],
            "OR": [1750.0, 600.0, 0.0],
            "WARD": [DAY_COST + 300.0, 0.0, 0.0],  # the direct KIT cost was booked to WARD
            "UNALLOCATED": [1100.0, 0.0, 0.0],
        },
        index=pd.Index([1, 2, 3], name="person_id"),
    )
    pd.testing.assert_frame_equal(result.by_cost_centre, expected_centres, check_column_type=False)
    np.testing.assert_allclose(by_product.sum(axis=1), result.totals)
    np.testing.assert_allclose(result.by_cost_centre.sum(axis=1), result.totals)


def test_episode_costs_other_target_year() -> None:
    at_2025 = episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    at_2023 = episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2023)
    np.testing.assert_allclose(at_2023.totals, at_2025.totals * 100 / 110)


def test_window_edges_are_inclusive_in_whole_days() -> None:
    catalogue = tiny_catalogue()
    enrolments = pd.DataFrame({"person_id": [1], "index_date": [pd.Timestamp("2025-03-01 14:00")]})
    offsets = [-11, -10, 0, 20, 21]
    rows = pd.DataFrame(
        {
            "person_id": [1] * 5,
            "product_code": ["OR_MIN"] * 5,
            "quantity": [1.0, 2.0, 4.0, 8.0, 16.0],
            "service_date": [pd.Timestamp("2025-03-01") + pd.Timedelta(days=d) for d in offsets],
        }
    )
    result = episode_costs(rows, enrolments, -10, 20, catalogue, 2025)
    assert result.totals[1] == pytest.approx((2 + 4 + 8) * 20.0)
    assert (result.rows_costed, result.rows_excluded) == (3, 2)


def test_episode_costs_with_enrolment_ids_and_plain_dates() -> None:
    rows = pd.DataFrame(
        {
            "enrolment_id": ["e1", "e1"],
            "product_code": ["VISIT", "DAY"],
            "quantity": [1, 2],
            "service_date": [date(2025, 5, 1), date(2025, 5, 2)],
        }
    )
    enrolments = pd.DataFrame({"enrolment_id": ["e1", "e2"], "index_date": [date(2025, 5, 1)] * 2})
    result = episode_costs(rows, enrolments, 0, 365, tiny_catalogue(), 2025, id_col="enrolment_id")
    assert result.totals["e1"] == pytest.approx(250 + 2 * 800 * 110 / 104)
    assert result.totals["e2"] == 0.0
    assert result.totals.index.name == "enrolment_id"


def test_episode_costs_with_no_rows() -> None:
    rows = pd.DataFrame(
        {
            "person_id": pd.Series([], dtype="int64"),
            "product_code": pd.Series([], dtype=object),
            "quantity": pd.Series([], dtype="float64"),
            "service_date": pd.Series([], dtype="datetime64[ns]"),
        }
    )
    result = episode_costs(rows, golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    assert list(result.totals) == [0.0, 0.0, 0.0]
    assert result.by_product.shape == (3, 0)
    assert result.rows_costed == 0


def test_episode_costs_only_direct_costs() -> None:
    rows = pd.DataFrame(
        {
            "person_id": [1],
            "service_date": [P1_INDEX],
            "amount_eur": [520.0],
            "price_year": [2024],
        }
    )
    result = episode_costs(rows, golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    assert result.totals[1] == pytest.approx(550.0)
    assert list(result.by_product.columns) == ["DIRECT_COST"]
    assert list(result.by_cost_centre.columns) == ["UNALLOCATED"]


def _set(row: int, column: str, value: object) -> object:
    def change(rows: pd.DataFrame) -> pd.DataFrame:
        rows.loc[row, column] = value
        return rows

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(0, "product_code", "NOPE"), "unknown product code.*NOPE"),
        (_set(0, "cost_centre", "NOWHERE"), "unknown cost centre.*NOWHERE"),
        (_set(0, "product_code", "UNPRICED"), "no unit cost.*UNPRICED"),
        (_set(0, "quantity", -1.0), r"quantity must be a number ≥ 0 on row\(s\) 0"),
        (_set(0, "quantity", np.nan), "quantity must be"),
        (_set(7, "price_year", np.nan), r"needs its price_year; missing on row\(s\) 7"),
        (_set(7, "amount_eur", -5.0), "amount_eur must be"),
        (_set(7, "price_year", 2019), "no value for 2019"),
        (_set(0, "service_date", pd.NaT), "service_date is missing"),
        (lambda rows: rows.drop(columns=["quantity"]), "no column.*quantity"),
    ],
)
def test_episode_cost_input_errors(change: object, message: str) -> None:
    rows = change(golden_rows())  # type: ignore[operator]
    with pytest.raises(CostingError, match=message):
        episode_costs(rows, golden_enrolments(), -90, 365, tiny_catalogue(), 2025)


def test_target_year_needs_an_index_value_but_service_years_do_not() -> None:
    with pytest.raises(CostingError, match="no value for 2030"):
        episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2030)
    # a 2027 service (beyond the index) uses the 2025 unit cost, moved from 2025 to the target
    rows = golden_rows()
    rows.loc[9, "service_date"] = pd.Timestamp("2027-01-01")
    enrolments = golden_enrolments()
    enrolments.loc[1, "index_date"] = pd.Timestamp("2026-12-01")
    result = episode_costs(rows, enrolments, -90, 365, tiny_catalogue(), 2026)
    assert result.totals[2] == pytest.approx(2 * 250 * 115 / 110)


def test_row_without_product_or_amount() -> None:
    rows = golden_rows()
    rows.loc[0, "product_code"] = np.nan
    with pytest.raises(CostingError, match=r"neither product_code nor amount_eur.*0"):
        episode_costs(rows, golden_enrolments(), -90, 365, tiny_catalogue(), 2025)


def test_enrolment_errors() -> None:
    catalogue = tiny_catalogue()
    twice = pd.concat([golden_enrolments(), golden_enrolments().iloc[[0]]])
    with pytest.raises(CostingError, match="more than once: 1"):
        episode_costs(golden_rows(), twice, -90, 365, catalogue, 2025)
    undated = golden_enrolments()
    undated.loc[2, "index_date"] = pd.NaT
    with pytest.raises(CostingError, match=r"1 enrolment.*no index_date"):
        episode_costs(golden_rows(), undated, -90, 365, catalogue, 2025)
    with pytest.raises(CostingError, match="starts after it ends"):
        episode_costs(golden_rows(), golden_enrolments(), 10, 0, catalogue, 2025)


def _loop_totals(
    rows: pd.DataFrame, enrolments: pd.DataFrame, start: int, end: int, target: int
) -> dict[int, float]:
    """A deliberately naive per-row implementation of the documented rules (the oracle)."""
    index_dates = dict(zip(enrolments["person_id"], enrolments["index_date"], strict=True))
    prices: dict[str, dict[int, float]] = {}
    for code, year, cost in UNIT_COSTS:
        prices.setdefault(code, {})[year] = cost
    totals = dict.fromkeys(index_dates, 0.0)
    for row in rows.itertuples():
        if row.person_id not in index_dates:
            continue
        offset = (row.service_date.normalize() - index_dates[row.person_id].normalize()).days
        if not start <= offset <= end:
            continue
        if not math.isnan(row.amount_eur):
            totals[row.person_id] += row.amount_eur * INDEX[target] / INDEX[int(row.price_year)]
            continue
        years = prices[row.product_code]
        earlier = [y for y in years if y <= row.service_date.year]
        price_year = max(earlier) if earlier else min(years)
        unit = years[price_year] * INDEX[target] / INDEX[price_year]
        totals[row.person_id] += row.quantity * unit
    return totals


def test_vectorised_costs_match_a_row_by_row_oracle() -> None:
    rng = np.random.default_rng(2024)
    n = 3000
    persons = np.arange(1, 201)
    enrolments = pd.DataFrame(
        {
            "person_id": persons,
            "index_date": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 900, len(persons)), unit="D"),
        }
    )
    direct = rng.random(n) < 0.1
    products = np.array(["VISIT", "OR_MIN", "DAY", "KIT"], dtype=object)
    dates = enrolments["index_date"].to_numpy()[rng.integers(0, len(persons), n)]
    rows = pd.DataFrame(
        {
            "person_id": rng.integers(1, 211, n),  # some persons are not enrolled
            "product_code": np.where(direct, None, products[rng.integers(0, 4, n)]),
            "quantity": np.where(direct, np.nan, rng.integers(1, 90, n) / 2),
            "service_date": pd.to_datetime(dates)
            + pd.to_timedelta(rng.integers(-150, 420, n), unit="D")
            + pd.to_timedelta(rng.integers(0, 1440, n), unit="min"),
            "amount_eur": np.where(direct, rng.integers(10, 5000, n).astype(float), np.nan),
            "price_year": np.where(direct, rng.integers(2022, 2027, n), np.nan),
        }
    )
    result = episode_costs(rows, enrolments, -90, 365, tiny_catalogue(), 2026)
    expected = _loop_totals(rows, enrolments, -90, 365, 2026)
    np.testing.assert_allclose(result.totals.to_numpy(), [expected[p] for p in persons])
    assert result.rows_costed + result.rows_excluded + result.rows_unenrolled == n
    assert result.rows_excluded > 0 and result.rows_unenrolled > 0
    np.testing.assert_allclose(result.by_product.sum(axis=1), result.totals)


def test_person_and_to_dict() -> None:
    result = episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    one = result.person(2)
    assert one == {
        "total_eur": pytest.approx(1100.0),
        "by_product": {"VISIT": pytest.approx(500.0), "OR_MIN": pytest.approx(600.0)},
        "by_cost_centre": {"CLINIC": pytest.approx(500.0), "OR": pytest.approx(600.0)},
    }
    data = result.to_dict()
    assert data["rows_excluded"] == 2
    assert data["totals"]["3"] == 0.0
    assert data["total_eur"] == pytest.approx(P1_TOTAL + P2_TOTAL)


# -- the shipped catalogue: BPH orders of magnitude -----------------------------------------------

TURP = [
    ("URO_VISIT_FIRST", 1, -40),
    ("UROFLOWMETRY", 1, -40),
    ("LAB_PANEL", 1, -20),
    ("OR_MINUTE", 60, 0),
    ("ANAESTHESIA_MINUTE", 75, 0),
    ("PACU_HOUR", 2, 0),
    ("UROLOGY_WARD_DAY", 1.4, 0),
    ("TURP_CONSUMABLES", 1, 0),
    ("PATHOLOGY_SAMPLE", 1, 0),
    ("CATHETER_VISIT", 1, 3),
    ("NURSE_PHONE", 1, 14),
    ("URO_VISIT_FOLLOWUP", 1, 90),
]
REZUM = [
    ("URO_VISIT_FIRST", 1, -40),
    ("UROFLOWMETRY", 1, -40),
    ("LAB_PANEL", 1, -20),
    ("PROC_ROOM_MINUTE", 30, 0),
    ("REZUM_DEVICE", 1, 0),
    ("CATHETER_VISIT", 1, 5),
    ("NURSE_PHONE", 1, 14),
    ("URO_VISIT_FOLLOWUP", 1, 90),
]
UROLIFT = [
    ("URO_VISIT_FIRST", 1, -40),
    ("UROFLOWMETRY", 1, -40),
    ("LAB_PANEL", 1, -20),
    ("PROC_ROOM_MINUTE", 45, 0),
    ("UROLIFT_IMPLANT", 4, 0),
    ("NURSE_PHONE", 1, 14),
    ("URO_VISIT_FOLLOWUP", 1, 90),
]


def _episode(person: int, index: pd.Timestamp, items: list[tuple[str, float, int]]) -> list[tuple]:
    return [(person, code, qty, index + pd.Timedelta(days=d)) for code, qty, d in items]


def test_shipped_catalogue_bph_episodes_land_in_published_ranges() -> None:
    catalogue = load_costing(costing_dir())
    in_2025 = pd.Timestamp("2025-03-01")
    in_2024 = pd.Timestamp("2024-04-15")
    rows = pd.DataFrame(
        _episode(1, in_2025, TURP)
        + _episode(2, in_2025, REZUM)
        + _episode(3, in_2025, UROLIFT)
        + _episode(4, in_2024, TURP),
        columns=["person_id", "product_code", "quantity", "service_date"],
    )
    enrolments = pd.DataFrame(
        {"person_id": [1, 2, 3, 4], "index_date": [in_2025, in_2025, in_2025, in_2024]}
    )
    result = episode_costs(rows, enrolments, -90, 365, catalogue, 2025)
    totals = result.totals
    for person in (1, 4):  # TURP in hospital: about €4 000–7 500
        assert 4000 <= totals[person] <= 7500, totals[person]
    for person in (2, 3):  # office-based procedures: about €1 700–3 200
        assert 1700 <= totals[person] <= 3200, totals[person]
    # the 2024 TURP uses 2024 unit costs indexed to 2025, which differ from 2025's own prices
    assert totals[4] != pytest.approx(totals[1])
    assert result.by_cost_centre.loc[1, "URO_WARD"] > 0
    assert "URO_WARD" not in result.by_cost_centre.columns[result.by_cost_centre.loc[2] > 0]
    assert result.rows_excluded == 0


# -- cohort summary -------------------------------------------------------------------------------


def test_t_quantiles_match_the_table() -> None:
    # two-sided 95 % critical values from any t table
    for df, value in [
        (1, 12.706),
        (2, 4.303),
        (3, 3.182),
        (5, 2.571),
        (10, 2.228),
        (30, 2.042),
        (31, 2.040),
        (60, 2.000),
        (120, 1.980),
    ]:
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-3), df
    assert t_quantile(0.95, 4) == pytest.approx(2.132, abs=1e-3)
    assert t_quantile(0.975, 100000) == pytest.approx(1.95996, abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile(0.4, 3)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_t_quantiles_agree_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 40), 50, 75, 200, 1000]:
        for p in (0.9, 0.95, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6), (df, p)


def test_mean_confidence_interval() -> None:
    low, high = mean_confidence_interval(np.array([100.0, 200.0, 300.0, 400.0]))
    # mean 250, SD √(50 000 / 3) = 129.0994, SE 64.5497, t(0.975, 3) = 3.182446
    assert low == pytest.approx(250 - 3.182446 * 64.5497, abs=1e-3)
    assert high == pytest.approx(250 + 3.182446 * 64.5497, abs=1e-3)
    assert all(math.isnan(v) for v in mean_confidence_interval(np.array([5.0])))


def test_cohort_cost_summary_golden_values() -> None:
    ids = pd.Index([11, 12, 13, 14, 21], name="person_id")
    totals = pd.Series([100.0, 200.0, 300.0, 400.0, 1000.0], index=ids)
    arms = pd.Series(["operating_room"] * 4 + ["outpatient_clinic"], index=ids)
    by_product = pd.DataFrame(
        {"OR_MINUTE": [100.0, 100.0, 300.0, 300.0, 0.0], "REZUM_DEVICE": [0, 100, 0, 100, 1000.0]},
        index=ids,
    )
    summary = cohort_cost_summary(totals, arms.iloc[::-1], by_product=by_product)
    room = summary.by_arm.loc["operating_room"]
    assert list(summary.by_arm.index) == ["operating_room", "outpatient_clinic"]
    assert room["n"] == 4
    assert room["total_eur"] == 1000.0
    assert room["mean_eur"] == 250.0
    assert room["median_eur"] == 250.0
    assert room["sd_eur"] == pytest.approx(math.sqrt(50000 / 3))
    # 250 ∓ 3.182446 × 129.0994 / 2 = 250 ∓ 205.426
    assert room["ci_low_eur"] == pytest.approx(44.574, abs=1e-3)
    assert room["ci_high_eur"] == pytest.approx(455.426, abs=1e-3)
    clinic = summary.by_arm.loc["outpatient_clinic"]
    assert clinic["n"] == 1 and clinic["mean_eur"] == 1000.0
    assert math.isnan(clinic["sd_eur"]) and math.isnan(clinic["ci_low_eur"])

    structure = summary.by_product
    assert structure is not None
    assert list(structure.columns) == ["arm", "product", "total_eur", "mean_eur", "share"]
    room_rows = structure[structure["arm"] == "operating_room"].set_index("product")
    assert room_rows.loc["OR_MINUTE", "total_eur"] == 800.0
    assert room_rows.loc["OR_MINUTE", "share"] == pytest.approx(0.8)
    assert room_rows.loc["REZUM_DEVICE", "mean_eur"] == pytest.approx(50.0)
    clinic_rows = structure[structure["arm"] == "outpatient_clinic"].set_index("product")
    assert clinic_rows.loc["REZUM_DEVICE", "share"] == 1.0
    assert summary.by_cost_centre is None
    data = summary.to_dict()
    assert data["by_arm"][1]["sd_eur"] is None
    assert data["by_arm"][0]["n"] == 4


def test_cohort_cost_summary_keeps_categorical_arm_order() -> None:
    ids = pd.Index([1, 2, 3])
    arms = pd.Series(pd.Categorical(["b", "a", "b"], categories=["b", "a", "unused"]), index=ids)
    summary = cohort_cost_summary(pd.Series([1.0, 2.0, 3.0], index=ids), arms)
    assert list(summary.by_arm.index) == ["b", "a"]


def test_cohort_cost_summary_from_episode_costs() -> None:
    result = episode_costs(golden_rows(), golden_enrolments(), -90, 365, tiny_catalogue(), 2025)
    arms = pd.Series(["x", "y", "y"], index=pd.Index([1, 2, 3], name="person_id"))
    summary = result.summary(arms)
    assert summary.by_arm.loc["y", "total_eur"] == pytest.approx(P2_TOTAL)
    assert summary.by_arm.loc["y", "mean_eur"] == pytest.approx(P2_TOTAL / 2)
    centres = summary.by_cost_centre
    assert centres is not None
    x_rows = centres[centres["arm"] == "x"]
    assert x_rows["share"].sum() == pytest.approx(1.0)
    assert set(centres["cost_centre"]) == {"CLINIC", "OR", "WARD", "UNALLOCATED"}


def test_cohort_cost_summary_needs_matching_people() -> None:
    totals = pd.Series([1.0, 2.0], index=[1, 2])
    with pytest.raises(CostingError, match="no arm for 1 person"):
        cohort_cost_summary(totals, pd.Series(["a"], index=[1]))
    with pytest.raises(CostingError, match="no cost for 1 person"):
        cohort_cost_summary(totals, pd.Series(["a", "a", "b"], index=[1, 2, 3]))
    with pytest.raises(CostingError, match="arm is missing"):
        cohort_cost_summary(totals, pd.Series(["a", None], index=[1, 2]))


# -- TDABC ----------------------------------------------------------------------------------------


def tdabc_inputs() -> Tdabc:
    return Tdabc(
        price_year=2023,
        resources=(
            TdabcResource(
                id="nurse",
                name=_text("Nurse"),
                cost_per_year_eur=96000,
                theoretical_minutes=100000,
            ),  # 96 000 / (100 000 × 0.8) = 1.20 €/min
            TdabcResource(
                id="room",
                name=_text("Room"),
                cost_per_year_eur=50000,
                theoretical_minutes=50000,
                practical_share=1.0,
            ),  # 1.00 €/min
        ),
        activities=(
            TdabcActivity(product="VISIT", resource="nurse", minutes=10),
            TdabcActivity(product="VISIT", resource="room", minutes=5),
            TdabcActivity(product="DAY", resource="nurse", minutes=100),
        ),
    )


def test_capacity_cost_rates() -> None:
    rates = capacity_cost_rates(tdabc_inputs().resources)
    assert rates.to_dict() == {"nurse": pytest.approx(1.2), "room": pytest.approx(1.0)}
    assert rates.name == "eur_per_minute"


def test_activity_costs() -> None:
    inputs = tdabc_inputs()
    costs = activity_costs(inputs.activities, capacity_cost_rates(inputs.resources))
    assert costs.to_dict() == {"VISIT": pytest.approx(17.0), "DAY": pytest.approx(120.0)}
    with pytest.raises(CostingError, match=r"no capacity cost rate.*room"):
        activity_costs(inputs.activities, pd.Series({"nurse": 1.0}))


def test_tdabc_unit_costs_beside_the_catalogue() -> None:
    frame = tdabc_unit_costs(tiny_catalogue(tdabc_inputs()))
    assert list(frame.index) == ["VISIT", "DAY"]  # catalogue order
    assert frame.loc["VISIT", "tdabc_unit_cost_eur"] == pytest.approx(17.0)
    assert frame.loc["VISIT", "catalogue_unit_cost_eur"] == pytest.approx(200.0)
    assert frame.loc["VISIT", "difference_eur"] == pytest.approx(-183.0)
    assert frame.loc["VISIT", "ratio"] == pytest.approx(0.085)
    # DAY has no 2023 unit cost: the earliest (2024, 800) indexed back to 2023
    assert frame.loc["DAY", "catalogue_unit_cost_eur"] == pytest.approx(800 * 100 / 104)
    assert tdabc_unit_costs(tiny_catalogue()).empty


def test_shipped_tdabc_is_close_to_the_catalogue() -> None:
    frame = tdabc_unit_costs(load_costing(costing_dir()))
    assert {"URO_VISIT_FIRST", "OR_MINUTE", "UROLOGY_WARD_DAY"} <= set(frame.index)
    assert frame["ratio"].between(0.6, 1.1).all(), frame["ratio"]
    assert frame["catalogue_unit_cost_eur"].notna().all()
