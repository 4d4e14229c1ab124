"""The scored responses behind the clinician page's cohort reference bands, kept per process
and brought up to date incrementally.

The patient page compares the patient with the median and interquartile range of the same arm
at each time point (:func:`vaikuttavuus.domain.reference.reference_band`). Those need every
submitted response of the instrument in the pilot, scored — the slow part of the page when it
was read and scored on every view. Here the scored frame is kept per database, pilot and
instrument together with the *version* of what it holds (count, sum of ids and latest change
of the submitted responses, :func:`vaikuttavuus.queries.submitted_response_versions`), read in
the request's snapshot:

* same version: the frame is used as it is;
* newer data: only the responses submitted since (changed at or after the latest change held,
  less :data:`CLOCK_SKEW` for transactions that committed out of clock order) are read and
  scored, and appended — *if* that accounts exactly for the new count and sum of ids;
  otherwise (an erasure deleted responses, a snapshot older than the cache) the frame is read
  whole again.

Submitted responses do not change (an erasure deletes whole responses; should one be changed
all the same, its later change time sends the update to a whole read), so the appended frame
equals a fresh read; ``tests/db/test_reference_cache.py`` compares them. Entries are immutable
and replaced whole, so threads share them without locks; the total number of cached rows is
bounded (:data:`MAX_CACHED_ROWS`, least recently used entries go first).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus import queries
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.reference import reference_band

CLOCK_SKEW = timedelta(minutes=5)
"""How far back from the latest change held the update looks for responses submitted since."""
MAX_CACHED_ROWS = 400_000
"""At most this many scored responses are kept per process, over every entry."""

Version = tuple[int, int, object]
Reference = dict[str, tuple[int, float | None, float | None, float | None]]
"""A score's cohort reference per time point: (n, median, first quartile, third quartile)."""


def _plain(value: object) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def reference_by_time_point(band: pd.DataFrame) -> Reference:
    """:func:`vaikuttavuus.domain.reference.reference_band`'s frame as plain values."""
    rows: Iterable[Any] = band.itertuples(index=False)  # named tuples of the band's columns
    return {
        str(row.time_point): (int(row.n), _plain(row.median), _plain(row.q1), _plain(row.q3))
        for row in rows
    }


def values_by_time_point(rows: pd.DataFrame) -> dict[str, dict[Hashable, Any]]:
    """One patient's scored responses of an instrument: time point → column → value (the
    values of ``DataFrame.to_dict("records")``, without its per-column cost on a few rows)."""
    columns: list[Hashable] = list(rows.columns)
    records = (
        {
            name: None if value is pd.NA else value
            for name, value in zip(columns, values, strict=True)
        }
        for values in rows.to_numpy(dtype=object)
    )
    return {str(record["time_point"]): record for record in records}


@dataclass
class Entry:
    """One instrument's scored responses in one pilot at one data version."""

    version: Version
    scores: pd.DataFrame
    ids: np.ndarray
    """The response ids held, sorted (int64): 8 bytes each, where a set of ints took 70."""
    references: dict[tuple[str, str], Reference] = field(default_factory=dict)
    _rows_of: dict[Hashable, Any] | None = None

    def reference(self, arm: str, score: str) -> Reference:
        """The cohort reference of ``score`` in ``arm`` per time point (computed once)."""
        key = (arm, score)
        found = self.references.get(key)
        if found is None:
            scores = self.scores
            same_arm = scores[scores["arm"] == arm] if not scores.empty else scores
            found = reference_by_time_point(reference_band(same_arm, score))
            self.references[key] = found
        return found

    def values_of(self, enrolment_id: int) -> dict[str, dict[Hashable, Any]]:
        """One patient's scored responses (time point → column → value)."""
        if self.scores.empty:
            return {}
        if self._rows_of is None:
            self._rows_of = self.scores.groupby("enrolment_id", sort=False).indices
        positions = self._rows_of.get(enrolment_id)
        if positions is None:
            return {}
        return values_by_time_point(self.scores.take(np.asarray(positions, dtype=np.intp)))


@dataclass
class _Cache:
    entries: OrderedDict[tuple[str, int, str], Entry] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    appends: int = 0
    reads: int = 0


_CACHE = _Cache()


def _database(session: AnySession) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


def _compact(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with the values of each text column shared between rows. As read, every row
    holds its own copy of its arm, time point, mode, language and band (some 60 bytes each);
    shared, the frame kept per process is about a third of that size, so it grows less as
    responses come in. The values and dtypes stay as they are."""
    compact = scores.copy(deep=False)
    for column in compact.columns:
        values = compact[column]
        if isinstance(values.dtype, pd.StringDtype):
            compact[column] = values.astype("category").astype(values.dtype)
    return compact


_NO_IDS = np.empty(0, dtype=np.int64)


def _ids(scores: pd.DataFrame) -> np.ndarray:
    return np.unique(scores["response_id"].to_numpy(dtype=np.int64)) if len(scores) else _NO_IDS


def _holds(ids: np.ndarray, response_id: int) -> bool:
    position = int(np.searchsorted(ids, response_id))
    return position < len(ids) and int(ids[position]) == response_id


def _full(session: AnySession, pilot_id: int, code: str, version: Version) -> Entry:
    scores = _compact(queries.instrument_scores(session, pilot_id, code))
    return Entry(version, scores, _ids(scores))


def _appended(
    session: AnySession, pilot_id: int, code: str, held: Entry, version: Version
) -> Entry | None:
    """``held`` plus the responses submitted since, or ``None`` if they do not account exactly
    for ``version`` (then the caller reads everything)."""
    count, total, _latest = version
    if held.version[2] is None or count < held.version[0]:
        return None
    since = held.version[2]
    assert isinstance(since, datetime)
    changed = queries.submitted_since(session, pilot_id, code, since - CLOCK_SKEW)
    if any(_holds(held.ids, i) and at is not None and at > since for i, at in changed):
        return None  # a response held was changed after it was cached: read everything
    new_ids = sorted(i for i, _at in changed if not _holds(held.ids, i))
    if held.version[0] + len(new_ids) != count or held.version[1] + sum(new_ids) != total:
        return None
    if not new_ids:
        return Entry(version, held.scores, held.ids)
    added = _compact(queries.instrument_scores(session, pilot_id, code, response_ids=new_ids))
    if len(added) != len(new_ids):
        return None
    scores = (
        pd.concat([held.scores, added], ignore_index=True)
        .sort_values(["person_id", "time_point_order"])
        .reset_index(drop=True)
        if not held.scores.empty
        else added
    )
    return Entry(version, scores, np.union1d(held.ids, np.asarray(new_ids, dtype=np.int64)))


def scored_responses(session: AnySession, pilot_id: int, codes: Sequence[str]) -> dict[str, Entry]:
    """The scored responses of each instrument of ``codes`` in the pilot, as the session's
    transaction (the request's read snapshot) sees them."""
    versions = queries.submitted_response_versions(session, pilot_id, codes)
    database = _database(session)
    result: dict[str, Entry] = {}
    for code in codes:
        key = (database, pilot_id, code)
        version = versions[code]
        with _CACHE.lock:
            held = _CACHE.entries.get(key)
            if held is not None:
                _CACHE.entries.move_to_end(key)
        if held is not None and held.version == version:
            _CACHE.hits += 1
            result[code] = held
            continue
        entry = _appended(session, pilot_id, code, held, version) if held is not None else None
        if entry is None:
            entry = _full(session, pilot_id, code, version)
            _CACHE.reads += 1
        else:
            _CACHE.appends += 1
        _store(key, entry)
        result[code] = entry
    return result


def _store(key: tuple[str, int, str], entry: Entry) -> None:
    with _CACHE.lock:
        held = _CACHE.entries.get(key)
        if held is not None and held.version[0] > entry.version[0]:
            return  # a newer version is there already (this request's snapshot is older)
        _CACHE.entries[key] = entry
        _CACHE.entries.move_to_end(key)
        while len(_CACHE.entries) > 1 and _rows() > MAX_CACHED_ROWS:
            _CACHE.entries.popitem(last=False)


def _rows() -> int:
    return sum(len(entry.scores) for entry in _CACHE.entries.values())


def statistics() -> dict[str, int]:
    """Entries, rows held and how requests were served (for tests and the soak figures)."""
    with _CACHE.lock:
        return {
            "entries": len(_CACHE.entries),
            "rows": _rows(),
            "hits": _CACHE.hits,
            "appends": _CACHE.appends,
            "reads": _CACHE.reads,
        }


def clear() -> None:
    """Forget every entry (tests)."""
    with _CACHE.lock:
        _CACHE.entries.clear()
        _CACHE.hits = _CACHE.appends = _CACHE.reads = 0
