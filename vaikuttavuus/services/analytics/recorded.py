"""The rows of a cohort as recorded: every frame a cohort analysis reads, each row with when
it was stored (and, for clinical measures, when a correction replaced it), read once, lazily.

A release of the management figures keeps, of these rows, those recorded by their block's
release date (:class:`vaikuttavuus.services.analytics.data.CohortData`); the pilot lead's
analysis of everything recorded takes them all, as they stand now (:meth:`RecordedRows.
current`). So one read of a pilot's whole cohort serves its default cohort views and the
management summaries of any window (:meth:`RecordedRows.within`): the background build of a
pilot's precomputed snapshots reads its data once.

A cut holds exactly the rows, in the same order and with the same dtypes, that a read with
the cut's filters returns (every read is ordered; see :mod:`vaikuttavuus.queries`): the
imputation and the bootstrap draw by row.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from vaikuttavuus import queries
from vaikuttavuus.database import AnySession

CohortPeriod = tuple[date | None, date | None]

RECORDED_COLUMNS = {
    "roster": ("recorded_at", "withdrawn_at"),
    "procedures": ("recorded_at",),
    "measurements": ("recorded_at", "superseded_at"),
    "cost_items": ("recorded_at",),
    "exposures": ("recorded_at",),
}
"""Per frame, the columns a recorded read adds to the read of what stands now."""

FRAMES = (*RECORDED_COLUMNS, "invitation_rows")
"""The frames read per row of the cohort (besides the scores)."""

MEASUREMENT_COLUMNS = [
    "enrolment_id", "measure_code", "value_num", "measured_on", "recorded_at", "superseded_at",
]  # fmt: skip
"""The recorded clinical measures' columns (also when no measure is a covariate)."""


class RecordedRows:
    """The recorded rows of one pilot's cohort with index dates in ``period`` (either end
    open; ``arm``, ``unit``: the cohort filters), each frame read on first use.

    ``instruments`` and ``measures``: the scheduled instruments and the clinical measures of
    the covariates (the frames hold those only).
    """

    def __init__(
        self,
        session: AnySession,
        pilot_id: int,
        instruments: Sequence[str],
        measures: Sequence[str],
        *,
        period: CohortPeriod = (None, None),
        arm: str | None = None,
        unit: str | None = None,
    ) -> None:
        self.session = session
        self.pilot_id = pilot_id
        self.instruments = tuple(instruments)
        self.measures = tuple(measures)
        self.period = period
        self.arm = arm
        self.unit = unit
        self._frames: dict[str, Any] = {}
        self._parent: RecordedRows | None = None
        self._lock = threading.RLock()

    def _query(self) -> dict[str, Any]:
        return {"period": self.period, "arm": self.arm, "unit": self.unit}

    # -- reading ----------------------------------------------------------------------------

    def frame(self, name: str) -> pd.DataFrame:
        """One recorded frame (:data:`FRAMES`): the rows of this cohort, with their
        recorded columns."""
        found = self._get(name)
        assert isinstance(found, pd.DataFrame)
        return found

    @property
    def scores(self) -> dict[str, pd.DataFrame]:
        """:func:`queries.cohort_scores` of the scheduled instruments, with ``recorded_at``."""
        found = self._get("scores")
        assert isinstance(found, dict)
        return found

    def _get(self, name: str) -> Any:
        with self._lock:
            if name not in self._frames:
                self._frames[name] = self._cut(name) if self._parent else self._read(name)
            return self._frames[name]

    def _read(self, name: str) -> Any:
        session, pilot, query = self.session, self.pilot_id, self._query()
        if name == "roster":
            return queries.cohort_enrolments(session, pilot, **query, recorded=True)
        if name == "scores":
            return queries.cohort_scores(session, pilot, self.instruments, **query, recorded=True)
        if name == "procedures":
            return queries.cohort_procedures(session, pilot, **query, recorded=True)
        if name == "measurements":
            if not self.measures:
                return pd.DataFrame(columns=MEASUREMENT_COLUMNS)
            return queries.cohort_measurements(
                session, pilot, self.measures, **query, recorded=True
            )
        if name == "cost_items":
            return queries.cohort_cost_items(session, pilot, **query, recorded=True)
        if name == "exposures":
            return queries.cohort_exposures(session, pilot, **query, recorded=True)
        if name == "invitation_rows":
            return queries.cohort_invitation_rows(session, pilot, **query)
        raise KeyError(name)

    # -- cutting ----------------------------------------------------------------------------

    def within(self, period: tuple[date, date]) -> RecordedRows:
        """The rows of the persons whose index date is in ``period`` (inside this cohort's
        period), cut from this read on first use instead of read again."""
        start, end = period
        if (self.period[0] is not None and start < self.period[0]) or (
            self.period[1] is not None and end > self.period[1]
        ):
            raise ValueError("a cut must lie inside the period read")
        cut = RecordedRows(
            self.session,
            self.pilot_id,
            self.instruments,
            self.measures,
            period=period,
            arm=self.arm,
            unit=self.unit,
        )
        cut._parent = self
        return cut

    def _cut(self, name: str) -> Any:
        assert self._parent is not None
        if name == "roster":
            roster = self._parent.frame("roster")
            start, end = self.period
            assert start is not None and end is not None  # a cut has both ends (within())
            inside = (roster["index_date"] >= pd.Timestamp(start)) & (
                roster["index_date"] <= pd.Timestamp(end)
            )
            return roster[inside].reset_index(drop=True)
        ids = self.frame("roster")["enrolment_id"]
        if name == "scores":
            return {
                code: frame[frame["enrolment_id"].isin(ids)].reset_index(drop=True)
                for code, frame in self._parent.scores.items()
            }
        frame = self._parent.frame(name)
        if "enrolment_id" not in frame.columns:
            return frame
        return frame[frame["enrolment_id"].isin(ids)].reset_index(drop=True)

    # -- everything recorded, as it stands now ----------------------------------------------

    def current(self, name: str) -> Any:
        """What the read of what stands now returns (the pilot lead's analysis): the recorded
        rows without their recorded columns; of the clinical measures only the values not
        superseded, and of the procedures each enrolment's first."""
        if name == "scores":
            return {
                code: frame.drop(columns=["recorded_at"]) for code, frame in self.scores.items()
            }
        frame = self.frame(name)
        if name == "measurements":
            frame = frame[frame["superseded_at"].isna()].reset_index(drop=True)
        frame = frame.drop(columns=list(RECORDED_COLUMNS.get(name, ())))
        if name == "procedures":
            frame = frame.drop_duplicates("enrolment_id", keep="first").reset_index(drop=True)
        return frame
