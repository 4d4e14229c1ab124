"""The period grid and the releases of the management figures (``docs/privacy.md``,
*Disclosure control across periods*).

Management figures are published only for **grid periods** — calendar quarters, half-years and
years, aligned to the calendar — and from **releases**: the figures of a release are the data as
they stood at the end of a quarter (the *release date*), and each part of a cohort is *frozen*
when it is released, so that no later request, on any day, sees it change by one person.

A *block* is one cohort quarter (the persons whose index date falls in a calendar quarter) at
one stage of follow-up: its enrolment, each time point, its care-cycle costs. The block is
released at the end of the first quarter on or after the day its last answering window (or
care cycle) has closed plus :data:`RELEASE_LAG_DAYS` (time for late records). Its data are
the rows recorded by that day, never anything recorded later; before that day the block is
not shown at all. So a figure always contains whole blocks, each frozen once.

Pure: dates, numpy and pandas only (no Flask, no database).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["Q", "H", "Y"]
RELEASE_LAG_DAYS = 30
"""Days after a block's last window (or care cycle) closes before its data are frozen, for
records entered late (imports, paper answers). Changing it changes every release: keep it."""
MONTHS = {"Q": 3, "H": 6, "Y": 12}
_PATTERN = re.compile(r"^\s*(\d{4})\s*(?:([QqHh])\s*([1-4]))?\s*$")


class PeriodError(ValueError):
    """A period that is not on the grid or not released. ``code`` names the problem
    (``format``, ``not_released``) so that the caller can say it in the user's language."""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True, order=True)
class GridPeriod:
    """A calendar quarter (``2025Q3``), half-year (``2025H1``) or year (``2025``)."""

    year: int
    kind: Kind
    number: int = 1

    def __post_init__(self) -> None:
        limit = 12 // MONTHS[self.kind]
        if not 1 <= self.number <= limit or not 1900 <= self.year <= 9999:
            raise PeriodError("format", self.code)

    @classmethod
    def parse(cls, text: str) -> GridPeriod:
        """``2025Q3``, ``2025H1`` or ``2025`` (case and spaces ignored)."""
        match = _PATTERN.match(text or "")
        if match is None:
            raise PeriodError("format", text)
        year, letter, number = match.groups()
        if letter is None:
            return cls(int(year), "Y", 1)
        kind: Kind = "Q" if letter.upper() == "Q" else "H"
        if kind == "H" and int(number) > 2:
            raise PeriodError("format", text)
        return cls(int(year), kind, int(number))

    @classmethod
    def quarter_of(cls, day: date) -> GridPeriod:
        return cls(day.year, "Q", (day.month - 1) // 3 + 1)

    @property
    def code(self) -> str:
        return str(self.year) if self.kind == "Y" else f"{self.year}{self.kind}{self.number}"

    @property
    def label(self) -> str:
        """``2025 Q3``, ``2025 H1``, ``2025`` (the same in every language)."""
        return str(self.year) if self.kind == "Y" else f"{self.year} {self.kind}{self.number}"

    @property
    def start(self) -> date:
        return date(self.year, (self.number - 1) * MONTHS[self.kind] + 1, 1)

    @property
    def end(self) -> date:
        last_month = self.number * MONTHS[self.kind]
        if last_month == 12:
            return date(self.year, 12, 31)
        return date(self.year, last_month + 1, 1) - timedelta(days=1)

    @property
    def bounds(self) -> tuple[date, date]:
        return (self.start, self.end)

    def quarters(self) -> list[GridPeriod]:
        """The quarters of the period, in order."""
        first = (self.number - 1) * MONTHS[self.kind] // 3 + 1
        return [GridPeriod(self.year, "Q", q) for q in range(first, first + MONTHS[self.kind] // 3)]

    def contains(self, other: GridPeriod) -> bool:
        return self.start <= other.start and other.end <= self.end

    def previous_quarters(self, count: int) -> list[GridPeriod]:
        """The ``count`` quarters ending with the period's last quarter, oldest first."""
        last = self.quarters()[-1]
        index = last.year * 4 + last.number - 1 - (count - 1)
        return [GridPeriod(i // 4, "Q", i % 4 + 1) for i in range(index, index + count)]

    def __str__(self) -> str:
        return self.code


def quarter_end(day: date) -> date:
    return GridPeriod.quarter_of(day).end


def release_date(today: date) -> date:
    """The release that ``today`` sees: the last quarter end strictly before ``today`` (the day
    of a quarter end is not over yet). Every request between two quarter ends sees the same
    release."""
    return quarter_end(GridPeriod.quarter_of(today).start - timedelta(days=1))


def block_release_dates(
    index_dates: pd.Series | np.ndarray, offset_days: int | np.ndarray
) -> np.ndarray:
    """Per index date, the release date of its block at ``offset_days`` after the index date
    (a time point's ``window_close_days``, the care cycle's ``end_days``, 0 for enrolment; one
    value or one per date): the end of the first quarter on or after the end of the index
    date's quarter plus the offset plus :data:`RELEASE_LAG_DAYS`. ``datetime64[D]``; NaT stays
    NaT."""
    days = pd.DatetimeIndex(pd.to_datetime(np.asarray(index_dates)))
    own_end = days.to_period("Q").end_time.normalize()
    offsets = np.asarray(offset_days, dtype="int64") + RELEASE_LAG_DAYS
    ready = own_end + pd.to_timedelta(offsets, unit="D")
    released = pd.DatetimeIndex(ready).to_period("Q").end_time.normalize()
    return np.asarray(released.to_numpy(dtype="datetime64[D]"))


def block_release(index_day: date, offset_days: int) -> date:
    """:func:`block_release_dates` of one day."""
    value = block_release_dates(np.array([np.datetime64(index_day, "D")]), offset_days)[0]
    return pd.Timestamp(value).date()


def is_released(period: GridPeriod, release: date) -> bool:
    """Whether every quarter of ``period`` is in ``release`` (its last quarter's enrolment
    block is released)."""
    return block_release(period.end, 0) <= release


def check_released(period: GridPeriod, release: date) -> GridPeriod:
    if not is_released(period, release):
        raise PeriodError("not_released", period.code)
    return period


def released_periods(first_day: date | None, release: date) -> list[GridPeriod]:
    """Every grid period from the quarter of ``first_day`` (the pilot's first index date) to
    the latest released one, newest first: years, then half-years, then quarters."""
    if first_day is None:
        return []
    periods: list[GridPeriod] = []
    for year in range(release.year + 1, first_day.year - 1, -1):
        for kind, count in (("Y", 1), ("H", 2), ("Q", 4)):
            for number in range(count, 0, -1):
                period = GridPeriod(year, kind, number)  # type: ignore[arg-type]
                if period.end >= first_day and is_released(period, release):
                    periods.append(period)
    return periods


def default_period(periods: list[GridPeriod]) -> GridPeriod | None:
    """The newest released year, else the newest half-year, else the newest quarter."""
    for kind in ("Y", "H", "Q"):
        found = [p for p in periods if p.kind == kind]
        if found:
            return max(found)
    return None


def nested_pairs(periods: list[GridPeriod]) -> Iterator[tuple[GridPeriod, GridPeriod]]:
    """Every (longer, shorter) pair of the grid periods in which one contains the other."""
    for outer in periods:
        for inner in periods:
            if outer != inner and outer.contains(inner):
                yield outer, inner
