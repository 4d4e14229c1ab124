"""The period grid and the releases of the management figures (domain/periods.py), and the
rule that a longer period hides what any of its quarters hides (grid_masked)."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vaikuttavuus.domain.periods import (
    RELEASE_LAG_DAYS,
    GridPeriod,
    PeriodError,
    block_release,
    block_release_dates,
    check_released,
    default_period,
    is_released,
    nested_pairs,
    release_date,
    released_periods,
)
from vaikuttavuus.services.analytics.publication import grid_masked, publish


@pytest.mark.parametrize(
    ("text", "start", "end", "code"),
    [
        ("2025Q3", date(2025, 7, 1), date(2025, 9, 30), "2025Q3"),
        ("2025q1", date(2025, 1, 1), date(2025, 3, 31), "2025Q1"),
        (" 2024 H2 ", date(2024, 7, 1), date(2024, 12, 31), "2024H2"),
        ("2025h1", date(2025, 1, 1), date(2025, 6, 30), "2025H1"),
        ("2024", date(2024, 1, 1), date(2024, 12, 31), "2024"),
        ("2024Q1", date(2024, 1, 1), date(2024, 3, 31), "2024Q1"),
    ],
)
def test_grid_periods_parse_and_span_whole_calendar_quarters(
    text: str, start: date, end: date, code: str
) -> None:
    period = GridPeriod.parse(text)
    assert (period.start, period.end, period.code) == (start, end, code)
    quarters = period.quarters()
    assert quarters[0].start == start and quarters[-1].end == end
    assert all(q.kind == "Q" for q in quarters)
    for first, second in itertools.pairwise(quarters):
        assert (second.start - first.end).days == 1


@pytest.mark.parametrize(
    "text", ["2025Q5", "2025H3", "2025-01-01:2025-03-31", "Q3", "", "2025Q0", "25Q1", "2025 x"]
)
def test_anything_off_the_grid_is_refused(text: str) -> None:
    with pytest.raises(PeriodError) as error:
        GridPeriod.parse(text)
    assert error.value.code == "format"


def test_the_release_is_the_last_quarter_end_before_today() -> None:
    assert release_date(date(2026, 12, 6)) == date(2026, 9, 30)
    assert release_date(date(2026, 12, 31)) == date(2026, 9, 30)  # the day is not over
    assert release_date(date(2027, 1, 1)) == date(2026, 12, 31)
    days = pd.date_range("2026-10-01", "2026-12-31").date
    assert {release_date(day) for day in days} == {date(2026, 9, 30)}


def test_a_block_is_released_at_the_first_quarter_end_after_its_windows_and_the_lag() -> None:
    # enrolment of 2025Q1: ready 31.3. + lag → released at the end of 2025Q2
    assert RELEASE_LAG_DAYS == 30
    assert block_release(date(2025, 2, 10), 0) == date(2025, 6, 30)
    # every index date of the quarter gets the same release date
    days = pd.date_range("2025-01-01", "2025-03-31").to_numpy()
    assert set(block_release_dates(days, 425).astype(str)) == {"2026-06-30"}
    assert block_release(date(2025, 6, 30), 425) == date(2026, 9, 30)
    offsets = np.array([0, 120])
    both = block_release_dates(
        np.array(["2025-05-03", "2025-05-03"], dtype="datetime64[D]"), offsets
    )
    assert list(both.astype(str)) == ["2025-09-30", "2025-12-31"]


def test_released_periods_and_the_default() -> None:
    release = date(2026, 9, 30)
    periods = released_periods(date(2024, 6, 5), release)
    codes = [p.code for p in periods]
    assert "2026H1" in codes and "2026Q2" in codes and "2026Q3" not in codes
    assert "2026" not in codes  # the year is not over
    assert "2024" in codes and "2024Q1" not in codes  # before the first index date
    assert all(is_released(p, release) for p in periods)
    assert default_period(periods) == GridPeriod.parse("2025")
    with pytest.raises(PeriodError) as error:
        check_released(GridPeriod.parse("2026Q3"), release)
    assert error.value.code == "not_released"
    assert released_periods(None, release) == []
    pairs = set(nested_pairs([GridPeriod.parse(c) for c in ("2025", "2025H2", "2025Q3", "2024")]))
    assert (GridPeriod.parse("2025"), GridPeriod.parse("2025Q3")) in pairs
    assert all(outer.contains(inner) for outer, inner in pairs)


def test_previous_quarters_cross_the_year() -> None:
    quarters = GridPeriod.parse("2025H1").previous_quarters(5)
    assert [q.code for q in quarters] == ["2024Q2", "2024Q3", "2024Q4", "2025Q1", "2025Q2"]


# -- a longer period hides what any of its quarters hides ----------------------------------------


def _table(counts: dict[str, tuple[int, float]]) -> pd.DataFrame:
    rows = [{"arm": arm, "n": n, "mean": mean} for arm, (n, mean) in counts.items()]
    n = sum(c[0] for c in counts.values())
    total = sum(c[0] * c[1] for c in counts.values())
    rows.append({"arm": "all", "n": n, "mean": total / n if n else np.nan})
    return pd.DataFrame(rows)


def _publish(table: pd.DataFrame) -> object:
    return publish(
        "t",
        table,
        counts=["n"],
        derived={"n": ["mean"]},
        groups=["arm"],
        total_label="all",
        min_count=5,
        suppress_zeros=False,
    )


def test_three_outputs_cannot_recover_a_small_quarter() -> None:
    """The attack the rule is made against: Y − H1 − Q3 = Q4. With a rule that only compares
    pairs (each sub-period's difference 0 or ≥ 5) the year would show; here it does not."""
    quarters = {
        "Q1": {"a": (10, 1.0), "b": (12, 2.0)},
        "Q2": {"a": (10, 1.5), "b": (11, 2.5)},
        "Q3": {"a": (10, 1.2), "b": (9, 2.1)},
        "Q4": {"a": (2, 9.0), "b": (10, 2.2)},  # two persons in arm a
    }
    tables = {q: _publish(_table(c)) for q, c in quarters.items()}

    def merged(*names: str) -> dict[str, tuple[int, float]]:
        result: dict[str, tuple[int, float]] = {}
        for arm in ("a", "b"):
            n = sum(quarters[q][arm][0] for q in names)
            total = sum(quarters[q][arm][0] * quarters[q][arm][1] for q in names)
            result[arm] = (n, total / n)
        return result

    year = grid_masked(_publish(_table(merged(*quarters))), list(tables.values()), ["arm"])
    half = grid_masked(_publish(_table(merged("Q1", "Q2"))), [tables["Q1"], tables["Q2"]], ["arm"])
    assert tables["Q4"].is_hidden(0, "n")  # the small quarter itself
    position = {r["arm"]: i for i, r in enumerate(year.records())}
    assert year.is_hidden(position["a"], "n") and year.is_hidden(position["a"], "mean")
    # the year's arm a is hidden, and arm b or all too (Q4 hides one of them), so Y − H1 − Q3
    # cannot be formed for arm a, and neither a − b nor all − b gives it
    assert year.is_hidden(position["b"], "n") or year.is_hidden(position["all"], "n")
    assert not half.is_hidden(0, "n")  # the first half-year is unaffected
    # every count the year shows is the sum of the counts its quarters show
    for i, record in enumerate(year.records()):
        if not year.is_hidden(i, "n"):
            parts = [t.records() for t in tables.values()]
            assert record["n"] == sum(
                next(r["n"] for r in rows if r["arm"] == record["arm"]) for rows in parts
            )


def test_an_empty_quarter_hides_nothing() -> None:
    """A quarter with no persons in a row (its zero hidden as "<5", since "none of them" would
    tell about everyone) adds nothing to the longer period, so it hides nothing there."""

    def table(n: int) -> object:
        frame = pd.DataFrame(
            {
                "arm": ["a", "b", "all"],
                "n_persons": [n, n, 2 * n],
                "n": [n, n, 2 * n],
                "mean": [1.0, 2.0, 1.5] if n else [np.nan] * 3,
            }
        )
        return publish(
            "t",
            frame,
            counts=["n_persons", "n"],
            derived={"n": ["mean"]},
            groups=["arm"],
            total_label="all",
            min_count=5,
            suppress_zeros=["n"],
        )

    full, empty = table(10), table(0)
    assert empty.is_hidden(0, "n") and not empty.is_hidden(0, "n_persons")
    assert not grid_masked(full, [full, empty], ["arm"], size=["n_persons"]).is_hidden(0, "n")
    assert grid_masked(full, [full, empty], ["arm"]).is_hidden(0, "n")
