"""Published tables: every table that leaves the clinician view goes through :func:`publish`
(:func:`vaikuttavuus.domain.disclosure.suppress_small_cells` with the pilot's minimum cell
size), so the pages, the CSV downloads, the PDFs and the CLI show the same suppressed tables."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus.domain import disclosure, outcomes
from vaikuttavuus.domain.stats import plain

ALL = outcomes.ALL_ARMS
"""The label of whole-cohort rows (``"all"``)."""


@dataclass(frozen=True)
class Published:
    """A table after small-cell suppression: what every output outside the clinician view
    shows. ``table`` keeps the ``suppressed`` marker column; hidden values are missing.
    ``hidden`` (same shape, booleans) marks the values the suppression removed and
    ``primary`` the counts hidden for being small themselves (the rest were hidden because a
    small one could otherwise be worked out)."""

    name: str
    table: pd.DataFrame
    min_count: int
    n_primary: int
    n_secondary: int
    hidden: pd.DataFrame = field(default_factory=pd.DataFrame)
    primary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def empty(self) -> bool:
        return self.table.empty

    def records(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (hidden or missing values are ``None``)."""
        return plain(self.table.to_dict("records"))

    def data_columns(self) -> list[str]:
        return [c for c in self.table.columns if c != disclosure.MARKER]

    def is_hidden(self, row: int, column: str) -> bool:
        values = self._hidden_columns.get(column)
        return values is not None and bool(values[row])

    def is_primary(self, row: int, column: str) -> bool:
        values = self._primary_columns.get(column)
        return values is not None and bool(values[row])

    @cached_property
    def _hidden_columns(self) -> dict[Hashable, np.ndarray]:
        """``hidden`` as one boolean array per column (the views ask cell by cell)."""
        return {column: self.hidden[column].to_numpy(dtype=bool) for column in self.hidden}

    @cached_property
    def _primary_columns(self) -> dict[Hashable, np.ndarray]:
        return {column: self.primary[column].to_numpy(dtype=bool) for column in self.primary}

    def reordered(self, order: Sequence[int]) -> Published:
        """The same table with its rows (and their suppression flags) in ``order``."""
        rows = list(order)

        def take(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.iloc[rows].reset_index(drop=True) if not frame.empty else frame

        return Published(
            self.name,
            take(self.table),
            self.min_count,
            self.n_primary,
            self.n_secondary,
            take(self.hidden),
            take(self.primary),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_count": self.min_count,
            "hidden_primary": self.n_primary,
            "hidden_secondary": self.n_secondary,
            "rows": self.records(),
        }


def publish(
    name: str,
    table: pd.DataFrame,
    *,
    counts: Sequence[str],
    derived: Mapping[str, Sequence[str]] | None = None,
    groups: Sequence[str] = (),
    strata: Sequence[str] = (),
    min_count: int,
    margins: bool = True,
    total_label: str | None = None,
    suppress_zeros: bool | Sequence[str] = True,
) -> Published:
    """:func:`~vaikuttavuus.domain.disclosure.suppress_small_cells` for every published table
    (one rule for all outputs). An empty table stays empty. ``suppress_zeros=False`` is for
    process counts (invitations, responses, imports) and group sizes (persons in an arm, with
    both answers, exposed, with a cost), whose zeros say nothing about a person's health or
    care: they are shown as 0, not as "<5". A list names the count columns whose zeros stay
    hidden (e.g. ``["n_responders"]``: no responders in a group tells about every member)."""
    if table.empty:
        return Published(name, table.assign(**{disclosure.MARKER: False}), min_count, 0, 0)
    table = table.reset_index(drop=True)
    present = set(table.columns)
    kept = {
        count: [c for c in columns if c in present]
        for count, columns in (derived or {}).items()
        if count in present
    }
    result = disclosure.suppress_small_cells(
        table,
        counts=[c for c in counts if c in present],
        derived=kept,
        groups=list(groups),
        strata=list(strata),
        min_count=min_count,
        margins=margins,
        total_label=total_label,
        suppress_zeros=suppress_zeros,
    )
    hidden = table.notna() & result.table[table.columns].isna()
    primary = (result.reasons == disclosure.PRIMARY).reindex(
        columns=table.columns, fill_value=False
    )
    return Published(
        name,
        result.table,
        min_count,
        result.n_primary,
        result.n_secondary,
        hidden.astype(bool),
        primary.fillna(False).astype(bool),
    )


def grid_masked(
    whole: Published,
    parts: Sequence[Published],
    keys: Sequence[str],
    size: Sequence[str] = (),
) -> Published:
    """The table of a longer grid period (half-year, year) with every value hidden that is
    hidden in the same row (matched on ``keys``) of any of its quarters' tables.

    The quarters are disjoint groups of persons, each table published with the usual primary
    and secondary suppression. A longer period then shows a count or a sum only when it is the
    sum of values its quarters show, so nothing can be worked out by differencing periods that
    the quarters do not already show (``docs/privacy.md``, *Disclosure control across
    periods*). ``size`` names the columns that count the row's group of persons: a quarter
    whose group is small (1 … ``min_count`` − 1 persons, or hidden) hides the whole row of the
    longer period — even figures the quarter itself may show, such as a share of a group whose
    size a share and a count would give away. A row a quarter lacks, or whose sizes are all 0,
    stands for no persons of that quarter and hides nothing."""
    if whole.table.empty or not parts:
        return whole
    table = whole.table.copy()
    columns = [c for c in whole.hidden.columns if c not in keys]
    extra = pd.DataFrame(False, index=table.index, columns=columns)
    wanted = table[list(keys)].reset_index(drop=True)
    for part in parts:
        if part.table.empty:
            continue
        found = wanted.merge(
            part.table[list(keys)].assign(_row=np.arange(len(part.table))),
            on=list(keys),
            how="left",
        )["_row"]
        matched = found.notna().to_numpy().copy()
        small_group = np.zeros(len(table), dtype=bool)
        if size:
            sizes = part.table[list(size)].apply(pd.to_numeric, errors="coerce")
            values = sizes.to_numpy(dtype=float, na_value=np.nan)
            # a hidden size is missing: never "empty" (NA == 0 must not count as true)
            empty = (values == 0).all(axis=1)
            small = (np.isnan(values) | ((values > 0) & (values < whole.min_count))).any(axis=1)
            positions = found.fillna(-1).astype(int).to_numpy()
            inside = positions >= 0
            small_group[inside] = small[positions[inside]] & ~empty[positions[inside]]
            matched &= ~np.where(inside, empty[np.maximum(positions, 0)], False)
        rows = found[matched].astype(int).to_numpy()
        for column in columns:
            extra[column] |= small_group
        for column in columns:
            if column not in part.hidden.columns:
                continue
            flags = np.zeros(len(table), dtype=bool)
            flags[matched] = part.hidden[column].to_numpy(dtype=bool)[rows]
            extra[column] |= flags
    newly = extra & table[columns].notna() & ~whole.hidden[columns].astype(bool)
    if not newly.to_numpy().any():
        return whole
    for column in columns:
        mask = newly[column].to_numpy()
        if not mask.any():
            continue
        if pd.api.types.is_numeric_dtype(table[column]) and table[column].dtype != bool:
            table[column] = table[column].astype(float).where(~mask)
        else:
            table[column] = table[column].astype(object).where(~mask, None)
    marker = disclosure.MARKER
    if marker in table.columns:
        table[marker] = table[marker].astype(bool) | newly.any(axis=1).to_numpy()
    hidden = whole.hidden.copy()
    hidden[columns] = hidden[columns].astype(bool) | newly
    return Published(
        whole.name,
        table,
        whole.min_count,
        whole.n_primary,
        whole.n_secondary + int(newly.to_numpy().sum()),
        hidden.astype(bool),
        whole.primary,
    )
