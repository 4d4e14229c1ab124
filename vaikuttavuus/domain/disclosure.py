"""Small-cell suppression for every figure that leaves the clinician view.

One rule, used by reports, exports and the management pages (pure pandas/numpy):

1. **Primary suppression.** A count below ``min_count`` (default 5, the pilot's
   ``min_cell_size``) is hidden. Zero counts are hidden too unless ``suppress_zeros=False``;
   ``suppress_zeros`` can also name the count columns whose zeros are hidden (a zero of
   *responders* says something about every person of the group, a zero *group size* only
   that there is nobody to show), the other count columns then show their zeros.
2. **Derived figures.** Every column the caller lists as derived from a count (means, rates,
   confidence limits, medians … of that cell) is hidden in the rows where the count is hidden.
3. **Secondary (complementary) suppression.** When margin totals are published (``margins``),
   a *line* of the table — the cells that differ only in one grouping column and add up to a
   total — must not contain exactly one hidden cell, because the total minus the visible cells
   would reveal it. In such a line the smallest visible cell (preferring non-zero counts; ties
   by table order) is hidden as well. Total rows present in the table (``total_label`` in a
   grouping column) take part: a line whose own total is hidden is safe, and a line of a
   single cell hides its total. Repeated until no line needs more.

This is the standard cell-suppression practice of statistical offices (e.g. Hundepool et al.,
*Statistical Disclosure Control*, Wiley 2012, ch. 4; THL/Statistics Finland practice of hiding
cells under 5). Hidden values become ``NaN``/``<NA>`` and ``None`` in ``to_dict()``; each row
carries a ``suppressed`` marker and the result records the reason (``primary`` or
``secondary``) per count column.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from vaikuttavuus.domain.stats import plain

__all__ = [
    "DEFAULT_MIN_COUNT",
    "PRIMARY",
    "SECONDARY",
    "SuppressedTable",
    "SuppressedTwoWay",
    "suppress_small_cells",
    "suppress_two_way",
]

DEFAULT_MIN_COUNT = 5
PRIMARY = "primary"
SECONDARY = "secondary"
MARKER = "suppressed"


@dataclass(frozen=True)
class SuppressedTable:
    """A long table after suppression.

    ``table``: the input with hidden counts as ``<NA>`` (nullable integers), hidden derived
    values as ``NaN``/``None`` and a boolean ``suppressed`` column (any value in the row
    hidden). ``reasons``: same index, one column per count column with ``"primary"``,
    ``"secondary"`` or ``None``.
    """

    table: pd.DataFrame
    reasons: pd.DataFrame
    count_columns: tuple[str, ...]
    min_count: int
    n_primary: int
    n_secondary: int

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for (_, row), (_, reason) in zip(
            self.table.iterrows(), self.reasons.iterrows(), strict=True
        ):
            record = {str(key): plain(value) for key, value in row.items()}
            record["suppression"] = {
                column: value for column, value in reason.items() if value is not None
            }
            rows.append(record)
        return {
            "min_count": self.min_count,
            "n_primary": self.n_primary,
            "n_secondary": self.n_secondary,
            "rows": rows,
        }


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _lines(
    frame: pd.DataFrame,
    groups: Sequence[str],
    total_label: Hashable | None,
    strata: Sequence[str] = (),
) -> list[tuple[list[int], int | None]]:
    """Every margin line: (positions of its cells, position of its total row or None)."""
    lines: list[tuple[list[int], int | None]] = []
    positions = np.arange(len(frame))
    for column in groups:
        others = [*strata, *(g for g in groups if g != column)]
        is_total = (
            (frame[column] == total_label).to_numpy()
            if total_label is not None
            else np.zeros(len(frame), dtype=bool)
        )
        if others:
            keys = frame.groupby(others, sort=False, dropna=False).ngroup().to_numpy()
        else:
            keys = np.zeros(len(frame), dtype=int)
        for key in np.unique(keys):
            member = keys == key
            cells = positions[member & ~is_total].tolist()
            totals = positions[member & is_total].tolist()
            if cells:
                lines.append((cells, totals[0] if totals else None))
    return lines


def _secondary(
    counts: np.ndarray,
    hidden: np.ndarray,
    lines: list[tuple[list[int], int | None]],
) -> np.ndarray:
    """Positions added by complementary suppression (boolean mask), iterated until stable."""
    added = np.zeros(hidden.size, dtype=bool)
    state = hidden.copy()
    changed = True
    while changed:
        changed = False
        for cells, total in lines:
            if total is not None and state[total]:
                continue
            n_hidden = int(state[cells].sum())
            if n_hidden != 1:
                continue
            if len(cells) == 1:
                if total is not None:
                    state[total] = added[total] = True
                    changed = True
                continue
            candidates = [p for p in cells if not state[p] and not np.isnan(counts[p])]
            if not candidates:
                continue
            nonzero = [p for p in candidates if counts[p] > 0]
            pool = nonzero or candidates
            choice = min(pool, key=lambda p: (counts[p], p))
            state[choice] = added[choice] = True
            changed = True
    return added


def suppress_small_cells(
    table: pd.DataFrame,
    *,
    counts: str | Sequence[str],
    derived: Mapping[str, Sequence[str]] | None = None,
    groups: Sequence[str] = (),
    strata: Sequence[str] = (),
    min_count: int = DEFAULT_MIN_COUNT,
    margins: bool = True,
    total_label: Hashable | None = None,
    suppress_zeros: bool | Collection[str] = True,
) -> SuppressedTable:
    """Hide small counts, their derived figures and complementary cells in a long table.

    ``table``: one row per cell — grouping columns (``groups``, e.g. ``["arm", "band"]``), one
    or more count columns (``counts``) and any figures. ``derived`` maps a count column to the
    columns computed from that count (e.g. ``{"n": ["mean", "ci_low", "ci_high"]}``); a column
    may be listed under several counts. ``margins``: totals over each grouping column are
    published (in this table as rows with ``total_label`` in that column, or elsewhere), so
    secondary suppression is needed; without ``groups`` only primary suppression applies.
    ``strata``: columns that split the table into separate tables with their own margins (e.g.
    ``["score", "time_point"]`` when each score and time point is tabulated by ``arm``).
    ``suppress_zeros``: hide zero counts too (``True``), show them (``False``), or hide the
    zeros of the named count columns only.
    """
    if min_count < 1:
        raise ValueError("min_count must be at least 1")
    count_columns = _as_list(counts)
    derived = dict(derived or {})
    named = [*count_columns, *groups, *strata, *(c for cols in derived.values() for c in cols)]
    for column in named:
        if column not in table.columns:
            raise KeyError(f"the table has no column '{column}'")
    unknown = sorted(set(derived) - set(count_columns))
    if unknown:
        raise ValueError(f"derived columns refer to unknown count column(s) {', '.join(unknown)}")
    result = table.copy().reset_index(drop=True)
    reasons = pd.DataFrame(index=result.index, columns=count_columns, dtype=object)
    lines = _lines(result, groups, total_label, strata) if margins and groups else []
    n_primary = n_secondary = 0
    row_hidden = np.zeros(len(result), dtype=bool)
    for column in count_columns:
        values = pd.to_numeric(result[column], errors="coerce").to_numpy(dtype=float)
        primary = ~np.isnan(values) & (values < min_count)
        hide_zeros = (
            suppress_zeros
            if isinstance(suppress_zeros, bool)
            else column in _as_list(suppress_zeros)  # type: ignore[arg-type]
        )
        if not hide_zeros:
            primary &= values != 0
        secondary = _secondary(values, primary, lines)
        hidden = primary | secondary
        n_primary += int(primary.sum())
        n_secondary += int(secondary.sum())
        # np.array(None) is what NumPy makes of a bare None; its stubs do not accept None
        reasons[column] = np.where(primary, PRIMARY, np.where(secondary, SECONDARY, np.array(None)))
        integer = np.all(np.isnan(values) | (values == np.round(values)))
        column_values: ExtensionArray = pd.array(values, dtype="Float64")
        if integer:
            column_values = pd.array(values.round(), dtype="Float64").astype(pd.Int64Dtype())
        column_values[hidden] = pd.NA
        result[column] = column_values
        for name in derived.get(column, ()):
            if pd.api.types.is_numeric_dtype(result[name]):
                result[name] = result[name].astype(float)
                result.loc[hidden, name] = np.nan
            else:
                result[name] = result[name].astype(object)
                result.loc[hidden, name] = None
        row_hidden |= hidden
    result[MARKER] = row_hidden
    reasons = reasons.astype(object).where(reasons.notna(), None)
    return SuppressedTable(result, reasons, tuple(count_columns), min_count, n_primary, n_secondary)


# --------------------------------------------------------------------------------------------
# Two-way tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressedTwoWay:
    """A rows × columns table of counts after suppression (``<NA>`` where hidden), the derived
    tables likewise, and ``reasons`` (``"primary"``/``"secondary"``/``None`` per cell)."""

    counts: pd.DataFrame
    derived: dict[str, pd.DataFrame]
    reasons: pd.DataFrame
    min_count: int
    n_primary: int
    n_secondary: int

    def to_dict(self) -> dict[str, Any]:
        def grid(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
            return {
                str(row): {str(col): plain(frame.loc[row, col]) for col in frame.columns}
                for row in frame.index
            }

        return {
            "min_count": self.min_count,
            "n_primary": self.n_primary,
            "n_secondary": self.n_secondary,
            "counts": grid(self.counts),
            "derived": {name: grid(frame) for name, frame in self.derived.items()},
            "suppression": grid(self.reasons),
        }


def suppress_two_way(
    counts: pd.DataFrame,
    *,
    derived: Mapping[str, pd.DataFrame] | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
    margins: bool = True,
    add_totals: bool = False,
    total_label: str = "total",
    suppress_zeros: bool = True,
) -> SuppressedTwoWay:
    """The same rule on a 2-way table (index = row categories, columns = column categories).

    ``derived``: tables of the same shape computed from the counts (e.g. row percentages). With
    ``add_totals`` the row and column totals (and the grand total) are computed from the
    unsuppressed counts and added under ``total_label`` before suppressing; an existing row or
    column named ``total_label`` is treated as a total as well.
    """
    derived = dict(derived or {})
    table = counts.copy()
    extra = {name: frame.copy() for name, frame in derived.items()}
    for name, frame in extra.items():
        if frame.shape != table.shape:
            raise ValueError(f"derived table '{name}' does not have the shape of the counts")
    if add_totals:
        table[total_label] = table.sum(axis=1)
        table.loc[total_label] = table.sum(axis=0)
        for name, frame in extra.items():
            frame[total_label] = np.nan
            frame.loc[total_label] = np.nan
            extra[name] = frame
    row_name, col_name = "__row__", "__column__"
    long = table.rename_axis(index=row_name, columns=col_name).stack(future_stack=True)
    # the columns have one level, so stacking gives a Series (the stubs say DataFrame)
    frame = cast(pd.Series, long).rename("count").reset_index()
    for name, values in extra.items():
        aligned = values.reindex(index=table.index, columns=table.columns)
        stacked = aligned.rename_axis(index=row_name, columns=col_name).stack(future_stack=True)
        frame[name] = stacked.to_numpy()
    has_total = total_label in table.index or total_label in table.columns
    result = suppress_small_cells(
        frame,
        counts="count",
        derived={"count": list(extra)},
        groups=[row_name, col_name],
        min_count=min_count,
        margins=margins,
        total_label=total_label if has_total else None,
        suppress_zeros=suppress_zeros,
    )

    def back(column: str, source: pd.DataFrame) -> pd.DataFrame:
        wide = source.pivot(index=row_name, columns=col_name, values=column)
        wide = wide.reindex(index=table.index, columns=table.columns)
        # pandas-stubs accept only str names here; pandas takes any hashable (as the index has)
        return wide.rename_axis(  # type: ignore[call-overload]
            index=table.index.name, columns=table.columns.name
        )

    reasons = result.reasons.assign(
        **{row_name: frame[row_name], col_name: frame[col_name]}
    ).rename(columns={"count": "reason"})
    return SuppressedTwoWay(
        counts=back("count", result.table),
        derived={name: back(name, result.table) for name in extra},
        reasons=back("reason", reasons).astype(object).where(lambda f: f.notna(), None),
        min_count=min_count,
        n_primary=result.n_primary,
        n_secondary=result.n_secondary,
    )
