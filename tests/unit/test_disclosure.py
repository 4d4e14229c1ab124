"""Small-cell suppression: primary, derived, secondary, totals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vaikuttavuus.domain.disclosure import (
    PRIMARY,
    SECONDARY,
    suppress_small_cells,
    suppress_two_way,
)
from vaikuttavuus.domain.outcomes import (
    ALL_ARMS,
    SUMMARY_DERIVED,
    change_scores,
    classify_responders,
    summarise_outcomes,
)
from vaikuttavuus.domain.specs import ResponderRule


def hidden(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def test_primary_suppression_hides_counts_and_derived_columns() -> None:
    table = pd.DataFrame(
        {
            "arm": ["or", "clinic", "laser"],
            "n": [3, 12, 20],
            "mean": [4.2, 5.1, 6.0],
            "ci": ["1.0–7.4", "3.9–6.3", "5.2–6.8"],
            "other": [1, 2, 3],
        }
    )
    result = suppress_small_cells(table, counts="n", derived={"n": ["mean", "ci"]}, margins=False)
    out = result.table
    assert out["n"].isna().tolist() == [True, False, False]
    assert np.isnan(out.loc[0, "mean"]) and out.loc[0, "ci"] is None
    assert out.loc[1, "mean"] == 5.1 and out.loc[1, "ci"] == "3.9–6.3"
    assert out["other"].tolist() == [1, 2, 3]  # not derived from n: shown
    assert out["suppressed"].tolist() == [True, False, False]
    assert result.reasons["n"].tolist() == [PRIMARY, None, None]
    assert (result.n_primary, result.n_secondary) == (1, 0)
    as_dict = result.to_dict()
    assert as_dict["rows"][0]["n"] is None and as_dict["rows"][0]["mean"] is None
    assert as_dict["rows"][0]["suppression"] == {"n": PRIMARY}
    assert as_dict["rows"][1]["n"] == 12
    assert json.dumps(as_dict)


def test_minimum_is_configurable_and_zero_handling() -> None:
    table = pd.DataFrame({"g": ["a", "b", "c"], "n": [0, 7, 12]})
    assert suppress_small_cells(table, counts="n", min_count=8, margins=False).table[
        "n"
    ].isna().tolist() == [True, True, False]
    kept = suppress_small_cells(table, counts="n", suppress_zeros=False, margins=False)
    assert kept.table["n"].tolist() == [0, 7, 12]


def test_secondary_suppression_in_a_one_way_table_with_total() -> None:
    table = pd.DataFrame(
        {
            "band": ["mild", "moderate", "severe", "total"],
            "n": [3, 40, 9, 52],
            "share": [3 / 52, 40 / 52, 9 / 52, 1.0],
        }
    )
    result = suppress_small_cells(
        table, counts="n", derived={"n": ["share"]}, groups=["band"], total_label="total"
    )
    # 52 − 40 − 9 would reveal 3, so the next smallest cell (9) is hidden too
    assert result.reasons["n"].tolist() == [PRIMARY, None, SECONDARY, None]
    assert result.table["n"].isna().tolist() == [True, False, True, False]
    assert np.isnan(result.table.loc[2, "share"])
    assert result.table.loc[3, "n"] == 52  # the total itself is still published


def test_no_secondary_when_the_total_is_hidden() -> None:
    table = pd.DataFrame({"band": ["mild", "severe", "total"], "n": [1, 2, 3]})
    result = suppress_small_cells(table, counts="n", groups=["band"], total_label="total")
    assert result.reasons["n"].tolist() == [PRIMARY, PRIMARY, PRIMARY]


def test_single_cell_line_hides_its_total() -> None:
    table = pd.DataFrame({"arm": ["or", "or"], "band": ["mild", "total"], "n": [3, 3]})
    result = suppress_small_cells(table, counts="n", groups=["band"], total_label="total")
    assert result.table["n"].isna().all()


def test_long_two_dimensional_table_with_margin_rows() -> None:
    table = pd.DataFrame(
        {
            "arm": ["or", "or", "clinic", "clinic", "all", "all"],
            "band": ["moderate", "severe", "moderate", "severe", "moderate", "severe"],
            "n": [3, 20, 12, 30, 15, 50],
            "mean_change": [-4.0, -8.0, -3.5, -7.2, -3.6, -7.5],
        }
    )
    result = suppress_small_cells(
        table, counts="n", derived={"n": ["mean_change"]}, groups=["arm", "band"], total_label="all"
    )
    reasons = result.reasons["n"].tolist()
    assert reasons[0] == PRIMARY
    # column "moderate": 15 − 12 reveals 3 → 12 hidden; row "or": 23 − 20 → 20 hidden;
    # then row "clinic" has one hidden cell (12) → 30 hidden
    assert reasons[1:4] == [SECONDARY, SECONDARY, SECONDARY]
    assert reasons[4:] == [None, None]
    assert result.table["mean_change"].isna().tolist() == [True] * 4 + [False] * 2
    assert result.table.loc[4:, "n"].tolist() == [15, 50]


def test_several_count_columns() -> None:
    table = pd.DataFrame(
        {
            "time_point": ["baseline", "m3", "m12"],
            "invited": [40, 38, 30],
            "responded": [38, 30, 4],
            "rate": [0.95, 0.79, 0.13],
        }
    )
    result = suppress_small_cells(
        table,
        counts=["invited", "responded"],
        derived={"invited": ["rate"], "responded": ["rate"]},
        margins=False,
    )
    assert result.table["invited"].tolist() == [40, 38, 30]
    assert result.table["responded"].isna().tolist() == [False, False, True]
    assert result.table["rate"].isna().tolist() == [False, False, True]
    assert result.reasons.loc[2, "responded"] == PRIMARY
    assert result.reasons.loc[2, "invited"] is None


def test_bad_arguments() -> None:
    table = pd.DataFrame({"g": ["a"], "n": [3]})
    with pytest.raises(KeyError, match="mean"):
        suppress_small_cells(table, counts="n", derived={"n": ["mean"]})
    with pytest.raises(ValueError, match="unknown count"):
        suppress_small_cells(table, counts="n", derived={"m": ["g"]})
    with pytest.raises(ValueError, match="min_count"):
        suppress_small_cells(table, counts="n", min_count=0)


# --------------------------------------------------------------------------------------------
# Two-way tables
# --------------------------------------------------------------------------------------------


def test_two_way_with_totals_golden() -> None:
    counts = pd.DataFrame(
        {"mild": [3, 10, 20], "moderate": [12, 2, 30], "severe": [15, 14, 40]},
        index=["or", "clinic", "laser"],
    )
    shares = counts / counts.to_numpy().sum()
    result = suppress_two_way(counts, derived={"share": shares}, add_totals=True)
    out = result.counts
    # primary: or/mild = 3, clinic/moderate = 2
    assert result.reasons.loc["or", "mild"] == PRIMARY
    assert result.reasons.loc["clinic", "moderate"] == PRIMARY
    # row "or": 3 hidden → next smallest 12 (moderate); column "mild": 3 → 10 (clinic)
    assert result.reasons.loc["or", "moderate"] == SECONDARY
    assert result.reasons.loc["clinic", "mild"] == SECONDARY
    # totals are the true sums and stay visible
    assert out.loc["total", "mild"] == 33 and out.loc["or", "total"] == 30
    assert out.loc["total", "total"] == 146
    assert out.loc["laser", "severe"] == 40
    assert result.derived["share"].isna().loc["or", "mild"]
    assert not result.derived["share"].isna().loc["laser", "severe"]
    assert json.dumps(result.to_dict())


def _lines_are_safe(reasons: pd.DataFrame) -> bool:
    """No row or column whose total is visible has exactly one hidden cell."""
    is_hidden = reasons.drop(index="total", columns="total").notna()
    column_total_hidden = reasons.loc["total"].drop("total").notna()
    row_total_hidden = reasons["total"].drop("total").notna()
    for per_line, total_hidden in (
        (is_hidden.sum(axis=0), column_total_hidden),
        (is_hidden.sum(axis=1), row_total_hidden),
    ):
        for key, n_hidden in per_line.items():
            if n_hidden == 1 and not total_hidden[key]:
                return False
    return True


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.int64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.integers(0, 40))
)
def test_two_way_property_no_cell_is_recoverable(values: np.ndarray) -> None:
    counts = pd.DataFrame(
        values,
        index=[f"r{i}" for i in range(values.shape[0])],
        columns=[f"c{j}" for j in range(values.shape[1])],
    )
    result = suppress_two_way(counts, add_totals=True)
    out = result.counts
    true_totals = counts.sum(axis=1)
    # 1. every small count is hidden, every visible count is the true value
    for r in counts.index:
        for c in counts.columns:
            if counts.loc[r, c] < 5:
                assert hidden(out.loc[r, c])
            elif not hidden(out.loc[r, c]):
                assert out.loc[r, c] == counts.loc[r, c]
    # 2. visible totals are the true sums (suppression never changes a number)
    for r in counts.index:
        if not hidden(out.loc[r, "total"]):
            assert out.loc[r, "total"] == true_totals[r]
    # 3. no line (row or column with a visible total) has exactly one hidden cell
    assert _lines_are_safe(result.reasons)
    # 4. reasons and hidden values agree
    assert (result.reasons.notna() == out.isna()).all().all()


def test_two_way_without_margins_is_primary_only() -> None:
    counts = pd.DataFrame({"a": [3, 10], "b": [12, 20]}, index=["x", "y"])
    result = suppress_two_way(counts, margins=False)
    assert result.counts.isna().sum().sum() == 1
    assert result.n_secondary == 0


def test_strata_keep_separate_tables_apart() -> None:
    # two time points, each tabulated by arm with an "all" total: only the m3 table needs
    # secondary suppression
    table = pd.DataFrame(
        {
            "time_point": ["m3", "m3", "m3", "m12", "m12", "m12"],
            "arm": ["or", "clinic", "all", "or", "clinic", "all"],
            "n": [4, 30, 34, 12, 30, 42],
        }
    )
    result = suppress_small_cells(
        table, counts="n", groups=["arm"], strata=["time_point"], total_label="all"
    )
    assert result.reasons["n"].tolist() == [PRIMARY, SECONDARY, None, None, None, None]


def test_outcome_summary_suppression_end_to_end() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for person in range(40):
        arm = "clinic" if person < 4 else "or"
        base = float(rng.integers(10, 30))
        rows += [
            (person, arm, "baseline", "total", base),
            (person, arm, "m3", "total", base - float(rng.integers(0, 10))),
        ]
    frame = pd.DataFrame(rows, columns=["person_id", "arm", "time_point", "score", "value"])
    rule = ResponderRule(instrument="ipss", score="total", min_improvement=3)
    changes = change_scores(frame, baseline="baseline", time_points=["baseline", "m3"])
    summary = summarise_outcomes(classify_responders(changes, rule))
    result = suppress_small_cells(
        summary.table,
        counts=list(SUMMARY_DERIVED),
        derived=SUMMARY_DERIVED,
        groups=["arm"],
        strata=["score", "time_point"],
        total_label=ALL_ARMS,
    )
    out = result.table.set_index("arm")
    # the clinic arm has 4 persons: its counts and every figure from them are hidden, and the
    # "or" arm is hidden as its complement (the "all" row would reveal the clinic arm)
    assert out.loc["clinic", "n"] is pd.NA and np.isnan(out.loc["clinic", "change_mean"])
    assert out.loc["or", "n"] is pd.NA and np.isnan(out.loc["or", "share_responders"])
    assert out.loc[ALL_ARMS, "n"] == 40
    assert not np.isnan(out.loc[ALL_ARMS, "change_mean"])
    assert json.dumps(result.to_dict())
