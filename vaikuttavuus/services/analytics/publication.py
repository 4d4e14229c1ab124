"""Published tables: every table that leaves the clinician view goes through :func:`publish`
(:func:`vaikuttavuus.domain.disclosure.suppress_small_cells` with the pilot's minimum cell
size), so the pages, the CSV downloads, the PDFs and the CLI show the same suppressed tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        return plain(self.table.to_dict("records"))  # type: ignore[no-any-return]

    def data_columns(self) -> list[str]:
        return [c for c in self.table.columns if c != disclosure.MARKER]

    def is_hidden(self, row: int, column: str) -> bool:
        values = self._hidden_columns.get(column)
        return values is not None and bool(values[row])

    def is_primary(self, row: int, column: str) -> bool:
        values = self._primary_columns.get(column)
        return values is not None and bool(values[row])

    @cached_property
    def _hidden_columns(self) -> dict[str, np.ndarray]:
        """``hidden`` as one boolean array per column (the views ask cell by cell)."""
        return {column: self.hidden[column].to_numpy(dtype=bool) for column in self.hidden}

    @cached_property
    def _primary_columns(self) -> dict[str, np.ndarray]:
        return {column: self.primary[column].to_numpy(dtype=bool) for column in self.primary}

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
    primary = result.reasons.eq(disclosure.PRIMARY).reindex(columns=table.columns, fill_value=False)
    return Published(
        name,
        result.table,
        min_count,
        result.n_primary,
        result.n_secondary,
        hidden.astype(bool),
        primary.fillna(False).astype(bool),
    )
