"""Data assembly of one pilot's cohort analysis: definitions, the frames read once from the
database (filtered in SQL by the pilot and the cohort filters), and the per-person tables the
sections share (scores, covariates, who is due, change and responder tables, QALYs, episode
costs). No section of the report is computed here; see the sibling modules."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from typing import Any, Self

import numpy as np
import pandas as pd

from vaikuttavuus import queries, report_settings
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain import outcomes
from vaikuttavuus.domain.catalogue import CostingCatalogue
from vaikuttavuus.domain.costing import (
    CostingError,
    EpisodeCosts,
    costs_complete,
    episode_costs,
)
from vaikuttavuus.domain.defaults import DEFAULT_SEED
from vaikuttavuus.domain.periods import block_release_dates
from vaikuttavuus.domain.specs import (
    BandScore,
    InstrumentSpec,
    PilotSpec,
    ResponderRule,
    utility_score,
)
from vaikuttavuus.models import Pilot
from vaikuttavuus.services.analytics.publication import Published, publish
from vaikuttavuus.services.analytics.recorded import RecordedRows
from vaikuttavuus.services.catalogue import costing_catalogue
from vaikuttavuus.services.definitions import (
    current_instrument,
    instrument_spec,
    load_measure_catalogue,
    pilot_spec,
)

# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Cohort filters: index dates in ``period`` (either end open), one ``arm``, one ``unit``,
    and the ``time_point`` (see the module docstring)."""

    period: tuple[date | None, date | None] = (None, None)
    arm: str | None = None
    unit: str | None = None
    time_point: str | None = None
    release: date | None = None
    """The release of the management figures (a quarter end; :mod:`vaikuttavuus.domain.
    periods`): every block of the cohort (quarter of index dates × enrolment, time point or
    care cycle) is shown only once released and with the rows recorded by its own release
    date, so later records never change it. ``None``: everything recorded, as of the data
    date (the pilot lead's pages)."""

    def key(self) -> tuple[object, ...]:
        return (*self.period, self.arm, self.unit, self.time_point, self.release)

    def query(self) -> dict[str, Any]:
        """The keyword arguments of the cohort reads in :mod:`vaikuttavuus.queries`."""
        return {"period": self.period, "arm": self.arm, "unit": self.unit}

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.period[0].isoformat() if self.period[0] else None,
            "to": self.period[1].isoformat() if self.period[1] else None,
            "arm": self.arm,
            "unit": self.unit,
            "time_point": self.time_point,
            "release": self.release.isoformat() if self.release else None,
        }


def wtp_key(value: float) -> str:
    """λ as an object key: whole numbers without a decimal point ("20000")."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _score_name(instrument: str, score: str) -> str:
    return f"{instrument}.{score}"


def _local_days(stamps: pd.Series) -> np.ndarray:
    """Naive UTC timestamps as the local calendar day (``datetime64[D]``; NaT stays NaT), in
    the reports' time zone: a record made on the evening of a release date in Helsinki
    belongs to that release."""
    values = pd.to_datetime(stamps)
    zone = report_settings.current().timezone
    local = values.dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None)
    return np.asarray(local.to_numpy(dtype="datetime64[D]"))


def _measure_covariates(spec: PilotSpec) -> list[str]:
    """The covariates of ``spec`` that are clinical measures of the catalogue."""
    known = {m.id for m in load_measure_catalogue().measures}
    return [name for name in spec.covariates if name in known]


def cohort_rows(session: AnySession, pilot: Pilot, filters: Filters | None = None) -> RecordedRows:
    """The recorded rows (read lazily) of ``pilot``'s cohort with ``filters``' period, arm and
    unit, as a :class:`CohortData` of those filters reads them: to share one read between
    several analyses (``CohortData(..., recorded=...)``)."""
    spec = pilot_spec(pilot)
    return RecordedRows(
        session,
        pilot.id,
        list(spec.instrument_ids),
        _measure_covariates(spec),
        **(filters or Filters()).query(),
    )


class CohortData:
    """The analytics of one pilot and filter set. Frames are read once, on first use; each
    section is computed once, on first use.

    ``n_boot`` and ``seed`` set the bootstrap (tests pass fewer replicates); ``as_of`` is the
    data date (default: today). ``recorded``: the recorded rows of exactly this cohort (same
    period, arm and unit), already read or shared with other analyses (one read of a pilot
    for its default views and management summaries; see
    :mod:`vaikuttavuus.services.analytics.recorded`); None: this analysis reads its own.
    """

    def __init__(
        self,
        session: AnySession,
        pilot: Pilot,
        filters: Filters | None = None,
        *,
        n_boot: int | None = None,
        seed: int = DEFAULT_SEED,
        as_of: date | None = None,
        imputations: int | None = None,
        recorded: RecordedRows | None = None,
    ) -> None:
        settings = report_settings.current()
        self.session = session
        self.pilot = pilot
        self.spec: PilotSpec = pilot_spec(pilot)
        self.filters = filters or Filters()
        self.n_boot = n_boot if n_boot is not None else settings.n_boot
        self.seed = seed
        self.as_of = self.filters.release or as_of or county_today()
        self.imputations = imputations if imputations is not None else settings.imputations
        """Imputed data sets of the primary analysis (None: the pilot's declared number)."""
        self.min_cell = self.spec.min_cell_size
        self._lock = threading.Lock()
        if recorded is not None and (
            recorded.pilot_id != pilot.id
            or (recorded.period, recorded.arm, recorded.unit)
            != (self.filters.period, self.filters.arm, self.filters.unit)
        ):
            raise ValueError("the recorded rows are of another cohort")
        self._shared_rows = recorded

    # -- definitions ---------------------------------------------------------------------------

    @property
    def time_points(self) -> list[str]:
        return [tp.id for tp in self.spec.time_points]

    @property
    def baseline(self) -> str:
        return self.spec.baseline.id

    @property
    def follow_ups(self) -> list[str]:
        return [tp for tp in self.time_points if tp != self.baseline]

    @property
    def follow_up(self) -> str | None:
        """The follow-up of the outcome, CEA and funnel figures (filter, else the last)."""
        chosen = self.filters.time_point
        if chosen in self.follow_ups:
            return chosen
        return self.follow_ups[-1] if self.follow_ups else None

    @property
    def shown_time_points(self) -> list[str]:
        """Time points of the response-rate and data-quality tables."""
        chosen = self.filters.time_point
        return [chosen] if chosen in self.time_points else self.time_points

    @property
    def arms(self) -> list[str]:
        return [arm.id for arm in self.spec.arms]

    @property
    def reference_arm(self) -> str:
        return self.spec.reference_arm.id

    @property
    def rules(self) -> tuple[ResponderRule, ...]:
        return (self.spec.primary_outcome, *self.spec.secondary_outcomes)

    @property
    def primary_score(self) -> str:
        rule = self.spec.primary_outcome
        return _score_name(rule.instrument, rule.score)

    @cached_property
    def scheduled_instruments(self) -> list[str]:
        return list(self.spec.instrument_ids)

    @cached_property
    def instruments(self) -> dict[str, InstrumentSpec]:
        """The current spec of every scheduled instrument (labels, directions, bands)."""
        return {
            code: instrument_spec(current_instrument(self.session, code))
            for code in self.scheduled_instruments
        }

    def direction(self, score: str) -> outcomes.Direction:
        instrument, score_id = score.split(".", 1)
        spec = self.instruments.get(instrument)
        value = spec.score(score_id).direction if spec is not None else None
        return value or "lower_is_better"

    @cached_property
    def utility(self) -> str | None:
        """The utility score of the QALYs (``instrument.score``): declared in the pilot's
        analysis, else the first baseline instrument with a value-set score; None without."""
        found = utility_score(self.spec, self.instruments)
        if found is None or found[0] not in self.scheduled_instruments:
            return None
        return _score_name(*found)

    @property
    def has_utility(self) -> bool:
        return self.utility is not None

    @property
    def has_procedures(self) -> bool:
        return bool(self.spec.procedure_types)

    @property
    def has_services(self) -> bool:
        return bool(self.spec.service_types)

    def _days(self, attribute: str) -> dict[str, int]:
        return {tp.id: int(getattr(tp, attribute)) for tp in self.spec.time_points}

    # -- releases (management figures) ------------------------------------------------------

    @property
    def released(self) -> bool:
        """Whether this analysis shows a release of the management figures (see
        :attr:`Filters.release`)."""
        return self.filters.release is not None

    def _block_release(self, enrolment_ids: pd.Series, offset_days: object) -> np.ndarray:
        """Per row, the release date of its block (``datetime64[D]``; NaT for an enrolment
        not in the roster)."""
        index = self.roster.set_index("enrolment_id")["index_date"]
        dates = index.reindex(np.asarray(enrolment_ids)).to_numpy()
        return block_release_dates(dates, np.asarray(offset_days, dtype="int64"))

    def _frozen(self, release: np.ndarray, recorded: pd.Series) -> np.ndarray:
        """Rows of released blocks that were recorded by their block's release date."""
        limit = np.datetime64(self.filters.release, "D")
        return np.asarray((release <= limit) & (_local_days(recorded) <= release), dtype=bool)

    def _close_days(self, time_points: pd.Series) -> np.ndarray:
        close = self._days("window_close_days")
        return np.asarray(time_points.map(close).fillna(10**6).to_numpy(), dtype="int64")

    @property
    def _exposure_days(self) -> int:
        """Exposures are frozen with the first follow-up (they define exposure before it)."""
        close = self._days("window_close_days")
        return close[self.follow_ups[0]] if self.follow_ups else 0

    # -- frames (each read once) -----------------------------------------------------------

    @cached_property
    def recorded_rows(self) -> RecordedRows:
        """The recorded rows of this cohort (shared, else read by this analysis on first
        use): a release keeps those recorded by their block's release date."""
        if self._shared_rows is not None:
            return self._shared_rows
        return cohort_rows(self.session, self.pilot, self.filters)

    @cached_property
    def roster(self) -> pd.DataFrame:
        if not self.released:
            if self._shared_rows is not None:
                return self._shared_rows.current("roster")
            return queries.cohort_enrolments(self.session, self.pilot.id, **self.filters.query())
        rows = self.recorded_rows.frame("roster").copy()
        release = block_release_dates(rows["index_date"].to_numpy(), 0)
        keep = self._frozen(release, rows["recorded_at"])
        withdrawn = _local_days(rows["withdrawn_at"]) <= release
        rows["status"] = rows["status"].where((rows["status"] != "withdrawn") | withdrawn, "active")
        return rows[keep].drop(columns=["recorded_at", "withdrawn_at"]).reset_index(drop=True)

    @cached_property
    def scores(self) -> dict[str, pd.DataFrame]:
        """Scored responses per scheduled instrument (one read of responses and answers)."""
        if not self.released:
            if self._shared_rows is not None:
                return self._shared_rows.current("scores")
            return queries.cohort_scores(
                self.session, self.pilot.id, self.scheduled_instruments, **self.filters.query()
            )
        frames = self.recorded_rows.scores
        result = {}
        for code, frame in frames.items():
            release = self._block_release(
                frame["enrolment_id"], self._close_days(frame["time_point"])
            )
            keep = self._frozen(release, frame["recorded_at"])
            result[code] = frame[keep].drop(columns=["recorded_at"]).reset_index(drop=True)
        return result

    @cached_property
    def invitations(self) -> pd.DataFrame:
        if not self.released:
            return queries.cohort_invitation_counts(
                self.session, self.pilot.id, **self.filters.query()
            )
        return self._released_invitation_counts()

    @cached_property
    def invitation_rows(self) -> pd.DataFrame:
        """Every invitation of the cohort with its timestamps (releases only)."""
        return self.recorded_rows.frame("invitation_rows")

    def _released_invitation_counts(self) -> pd.DataFrame:
        """:func:`queries.cohort_invitation_counts` of the released blocks, each invitation
        with the status it had on its block's release date."""
        rows = self.invitation_rows
        rows = rows[rows["enrolment_id"].isin(self.roster["enrolment_id"])]
        release = self._block_release(rows["enrolment_id"], self._close_days(rows["time_point"]))
        limit = np.datetime64(self.filters.release, "D")
        rows = rows[release <= limit]
        release = release[release <= limit]
        completed = _local_days(rows["completed_at"]) <= release
        cancelled = ~completed & (_local_days(rows["cancelled_at"]) <= release)
        opted = (
            ~completed
            & ~cancelled
            & (rows["status"] == "opted_out").to_numpy()
            & (_local_days(rows["opted_out_at"]) <= release)
        )
        still_open = (
            ~completed
            & ~cancelled
            & ~opted
            & (rows["closes_on"].to_numpy(dtype="datetime64[D]") >= release)
        )
        status = np.select(
            [completed, cancelled, opted, still_open],
            ["completed", "cancelled", "opted_out", "open"],
            "expired",
        )
        late = completed & (
            _local_days(rows["completed_at"]) > rows["closes_on"].to_numpy(dtype="datetime64[D]")
        )
        arm = self.roster.set_index("enrolment_id")["arm"].reindex(rows["enrolment_id"])
        frame = pd.DataFrame(
            {
                "arm": arm.to_numpy(),
                "time_point": rows["time_point"].to_numpy(),
                "status": status,
                "n": 1,
                "after_reminder": (completed & (rows["reminders_sent"].to_numpy() > 0)).astype(
                    "int64"
                ),
                "after_window": late.astype("int64"),
            }
        )
        columns = ["arm", "time_point", "status", "n", "after_reminder", "after_window"]
        if frame.empty:
            return pd.DataFrame(columns=columns).astype(
                {"n": "int64", "after_reminder": "int64", "after_window": "int64"}
            )
        counts = frame.groupby(["arm", "time_point", "status"], as_index=False, sort=False).sum()
        return counts[columns]

    @cached_property
    def procedures(self) -> pd.DataFrame:
        if not self.released:
            if self._shared_rows is not None:
                return self._shared_rows.current("procedures")
            return queries.cohort_procedures(self.session, self.pilot.id, **self.filters.query())
        rows = self.recorded_rows.frame("procedures")
        keep = self._frozen(self._block_release(rows["enrolment_id"], 0), rows["recorded_at"])
        rows = rows[keep].drop(columns=["recorded_at"])
        return rows.drop_duplicates("enrolment_id", keep="first").reset_index(drop=True)

    @cached_property
    def cost_items(self) -> pd.DataFrame:
        if not self.released:
            if self._shared_rows is not None:
                return self._shared_rows.current("cost_items")
            return queries.cohort_cost_items(self.session, self.pilot.id, **self.filters.query())
        rows = self.recorded_rows.frame("cost_items")
        release = self._block_release(rows["enrolment_id"], self.spec.care_cycle.end_days)
        keep = self._frozen(release, rows["recorded_at"])
        return rows[keep].drop(columns=["recorded_at"]).reset_index(drop=True)

    @cached_property
    def exposures(self) -> pd.DataFrame:
        if not self.released:
            if self._shared_rows is not None:
                return self._shared_rows.current("exposures")
            return queries.cohort_exposures(self.session, self.pilot.id, **self.filters.query())
        rows = self.recorded_rows.frame("exposures")
        release = self._block_release(rows["enrolment_id"], self._exposure_days)
        keep = self._frozen(release, rows["recorded_at"])
        return rows[keep].drop(columns=["recorded_at"]).reset_index(drop=True)

    @cached_property
    def import_log(self) -> pd.DataFrame:
        return queries.pilot_import_log(self.session, self.pilot.code)

    @cached_property
    def measure_covariates(self) -> list[str]:
        return _measure_covariates(self.spec)

    @cached_property
    def measurements(self) -> pd.DataFrame:
        if not self.measure_covariates:
            return pd.DataFrame(columns=["enrolment_id", "measure_code", "value_num"])
        if not self.released:
            if self._shared_rows is not None:
                return self._shared_rows.current("measurements")
            return queries.cohort_measurements(
                self.session, self.pilot.id, self.measure_covariates, **self.filters.query()
            )
        rows = self.recorded_rows.frame("measurements")
        release = self._block_release(rows["enrolment_id"], 0)
        keep = self._frozen(release, rows["recorded_at"]) & ~(
            _local_days(rows["superseded_at"]) <= release
        )
        return rows[keep].drop(columns=["recorded_at", "superseded_at"]).reset_index(drop=True)

    def restricted(self, period: tuple[date, date]) -> Self:
        """The same analysis for the persons whose index date is in ``period`` (inside this
        one's), sharing the rows already read: the quarters of a release are cut from one
        read of the whole window. Releases only (their invitations are read per row)."""
        if not self.released:
            raise ValueError("restricted() needs a release")
        other = type(self)(
            self.session,
            self.pilot,
            replace(self.filters, period=period),
            n_boot=self.n_boot,
            seed=self.seed,
            as_of=self.as_of,
            imputations=self.imputations,
        )
        roster = self.roster
        start, end = pd.Timestamp(period[0]), pd.Timestamp(period[1])
        inside = (roster["index_date"] >= start) & (roster["index_date"] <= end)
        ids = roster.loc[inside, "enrolment_id"]
        cached = other.__dict__
        cached["roster"] = roster[inside].reset_index(drop=True)
        cached["scores"] = {
            code: frame[frame["enrolment_id"].isin(ids)].reset_index(drop=True)
            for code, frame in self.scores.items()
        }
        for name in ("invitation_rows", "procedures", "cost_items", "exposures", "measurements"):
            frame = getattr(self, name)
            if "enrolment_id" in frame.columns:
                frame = frame[frame["enrolment_id"].isin(ids)].reset_index(drop=True)
            cached[name] = frame
        for name in ("instruments", "catalogue", "measure_covariates", "import_log"):
            cached[name] = getattr(self, name)
        return other

    @cached_property
    def score_frames(self) -> dict[str, pd.DataFrame]:
        """Every numeric score in the domain's long form, one frame per score (``instrument.
        score``): ``person_id`` (the enrolment), ``arm``, ``time_point``, ``score``, ``value``.
        Kept apart per score so that no step compares score names row by row."""
        arm_of = self.roster.set_index("enrolment_id")["arm"]
        frames: dict[str, pd.DataFrame] = {}
        for code, answered in self.scores.items():
            spec = self.instruments.get(code)
            if answered.empty or spec is None:
                continue
            frame = answered[answered["time_point"].isin(self.time_points)]
            person = frame["enrolment_id"].to_numpy()
            arm = arm_of.reindex(person).to_numpy()
            time_point = frame["time_point"].to_numpy()
            for score in spec.scores:
                if score.id not in frame.columns or frame[score.id].dtype.kind != "f":
                    continue
                name = _score_name(code, score.id)
                frames[name] = pd.DataFrame(
                    {
                        "person_id": person,
                        "arm": arm,
                        "time_point": time_point,
                        "score": name,
                        "value": frame[score.id].to_numpy(dtype=float),
                    }
                )
        return frames

    def score_long(self, score: str) -> pd.DataFrame:
        """The long frame of one score (empty when nothing was answered)."""
        found = self.score_frames.get(score)
        if found is None:
            return pd.DataFrame(columns=list(outcomes.LONG_COLUMNS))
        return found

    @cached_property
    def persons(self) -> pd.DataFrame:
        """The domain's roster: ``person_id`` (enrolment id) and ``arm``."""
        return self.roster[["enrolment_id", "arm"]].rename(columns={"enrolment_id": "person_id"})

    @cached_property
    def _answered(self) -> dict[str, np.ndarray]:
        """Per time point: the enrolments that submitted any instrument of it."""
        pieces = [f[["enrolment_id", "time_point"]] for f in self.scores.values() if len(f)]
        if not pieces:
            return {}
        both = pd.concat(pieces, ignore_index=True)
        return {
            str(tp): group["enrolment_id"].unique()
            for tp, group in both.groupby("time_point", sort=False)
        }

    def due(self, time_point: str) -> pd.Series:
        """Per roster row: the time point is due (its window has closed) or was answered. In a
        release: the block of the person's index-date quarter at this time point is released
        (every window of the quarter closed), answered or not."""
        close = self._days("window_close_days")[time_point]
        if self.released:
            release = block_release_dates(self.roster["index_date"].to_numpy(), close)
            limit = np.datetime64(self.filters.release, "D")
            return pd.Series(release <= limit, index=self.roster.index)
        closed = self.roster["index_date"] + pd.to_timedelta(close, unit="D") < pd.Timestamp(
            self.as_of
        )
        answered = self._answered.get(time_point, np.empty(0, dtype=np.int64))
        return closed | self.roster["enrolment_id"].isin(answered)

    @cached_property
    def covariates(self) -> pd.DataFrame:
        """The pilot's covariates per person (index = enrolment id); see the module docstring."""
        roster = self.roster.set_index("enrolment_id")
        result = pd.DataFrame(index=roster.index)
        for name in self.spec.covariates:
            if name == "age":
                result[name] = roster["index_date"].dt.year - roster["birth_year"]
            elif name == "sex":
                result[name] = roster["sex"].astype(object)
            elif name == "lives_alone":
                result[name] = roster["lives_alone"].astype("Float64").astype(float)
            elif name in ("unit", "arm"):
                result[name] = roster[name].astype(object)
            elif name.startswith("baseline_"):
                score = self.baseline_score_name(name.removeprefix("baseline_"))
                if score is None:
                    continue
                values = self.score_long(score)
                values = values[values["time_point"] == self.baseline]
                result[name] = values.set_index("person_id")["value"].reindex(result.index)
            elif name in self.measure_covariates:
                result[name] = self._measure_at_index(name).reindex(result.index)
        return result

    def baseline_score_name(self, rest: str) -> str | None:
        for code in sorted(self.scheduled_instruments, key=len, reverse=True):
            if rest.startswith(code + "_"):
                return _score_name(code, rest.removeprefix(code + "_"))
        return None

    def _measure_at_index(self, measure: str) -> pd.Series:
        rows = self.measurements
        rows = rows[rows["measure_code"] == measure]
        index_date = self.roster.set_index("enrolment_id")["index_date"]
        rows = rows.assign(index_date=index_date.reindex(rows["enrolment_id"]).to_numpy())
        rows = rows[rows["measured_on"] <= rows["index_date"]]
        latest = rows.sort_values(["enrolment_id", "measured_on"]).drop_duplicates(
            "enrolment_id", keep="last"
        )
        return latest.set_index("enrolment_id")["value_num"]

    # -- derived per-person tables ---------------------------------------------------------

    def _publish(self, name: str, table: pd.DataFrame, **kwargs: Any) -> Published:
        return publish(name, table, min_count=self.min_cell, **kwargs)

    def _bands(self, rule: ResponderRule) -> BandScore | None:
        if not rule.by_baseline_band:
            return None
        spec = self.instruments.get(rule.instrument)
        if spec is None:
            return None
        return next(
            (s for s in spec.scores if isinstance(s, BandScore) and s.of == rule.score), None
        )

    def changes(self, score: str, follow_ups: Sequence[str] | None = None) -> pd.DataFrame:
        """Per follow-up, the change table of the persons due (see :meth:`due`)."""
        wanted = list(follow_ups) if follow_ups is not None else self.follow_ups
        parts = [self._change_table(score, tp) for tp in wanted]
        if not parts:
            return pd.DataFrame(
                columns=[
                    "person_id",
                    "arm",
                    "score",
                    "time_point",
                    "baseline",
                    "follow_up",
                    "change",
                ]
            )
        return pd.concat(parts, ignore_index=True)

    def _change_table(self, score: str, time_point: str) -> pd.DataFrame:
        """The change table of ``score`` at one follow-up (the persons due), computed once per
        analysis: the outcome, cost-effectiveness and funnel sections share it. Callers get
        it through :meth:`changes`, which concatenates (copies) it."""
        key = (score, time_point)
        cached = self._changes_cache.get(key)
        if cached is None:
            data = self.score_long(score)
            due = self._due_ids(time_point)
            roster = self.persons[self.persons["person_id"].isin(due)]
            rows = data[
                data["person_id"].isin(due) & data["time_point"].isin([self.baseline, time_point])
            ]
            cached = outcomes.change_scores(
                rows,
                baseline=self.baseline,
                time_points=[self.baseline, time_point],
                persons=roster,
                scores=[score],
            ).table
            self._changes_cache[key] = cached
        return cached

    @cached_property
    def _changes_cache(self) -> dict[tuple[str, str], pd.DataFrame]:
        return {}

    def _due_ids(self, time_point: str) -> pd.Series:
        """The enrolment ids of the persons due at ``time_point`` (see :meth:`due`)."""
        cached = self._due_cache.get(time_point)
        if cached is None:
            cached = self.roster.loc[self.due(time_point), "enrolment_id"]
            self._due_cache[time_point] = cached
        return cached

    @cached_property
    def _due_cache(self) -> dict[str, pd.Series]:
        return {}

    def responders(
        self, rule: ResponderRule, follow_ups: Sequence[str] | None = None
    ) -> pd.DataFrame:
        score = _score_name(rule.instrument, rule.score)
        table = self.changes(score, follow_ups)
        if table.empty:
            return table.assign(
                improvement=pd.Series(dtype=float),
                threshold=pd.Series(dtype=float),
                responder=pd.array([], dtype="boolean"),
            )
        return outcomes.classify_responders(
            table,
            rule,
            direction=self.direction(score),
            bands=self._bands(rule),
            score=score,
        ).table

    @cached_property
    def qaly_table(self) -> pd.DataFrame | None:
        """QALYs per person (AUC over every time point; complete cases), or None."""
        if not self.has_utility:
            return None
        assert self.utility is not None
        utilities = self.score_long(self.utility)
        last = self.time_points[-1]
        due = self._due_ids(last)
        roster = self.persons[self.persons["person_id"].isin(due)]
        utilities = utilities[utilities["person_id"].isin(due)]
        days = self._days("offset_days")
        return outcomes.auc_qalys(
            utilities[["person_id", "arm", "time_point", "value"]],
            time_days={tp: days[tp] for tp in self.time_points},
            persons=roster,
        ).table

    @cached_property
    def catalogue(self) -> CostingCatalogue:
        return costing_catalogue(self.session)

    @cached_property
    def cycle_complete(self) -> pd.Series:
        """Per roster row: the care cycle ended before the data date (in a release: the
        care-cycle block of the person's index-date quarter is released)."""
        if self.released:
            release = block_release_dates(
                self.roster["index_date"].to_numpy(), self.spec.care_cycle.end_days
            )
            limit = np.datetime64(self.filters.release, "D")
            return pd.Series(release <= limit, index=self.roster.index)
        end = pd.to_timedelta(self.spec.care_cycle.end_days, unit="D")
        return self.roster["index_date"] + end < pd.Timestamp(self.as_of)

    @cached_property
    def costs_complete(self) -> pd.Series:
        """Per roster row: the person's costs are complete for the care cycle — it ended
        before the data date and the pilot's declared rule holds (``analysis.costs``: at least
        one cost row inside the care cycle, or one of the named products;
        :func:`vaikuttavuus.domain.costing.costs_complete`). The others whose care cycle has
        ended have *missing* costs, never 0 €."""
        rule = self.spec.analysis.costs
        complete = costs_complete(
            self.roster[["enrolment_id", "index_date"]],
            self.cost_items,
            start_days=self.spec.care_cycle.start_days,
            end_days=self.spec.care_cycle.end_days,
            as_of=self.as_of,
            products=rule.products if rule.rule == "any_of_products" else None,
        )
        result = pd.Series(
            complete.reindex(self.roster["enrolment_id"]).to_numpy(dtype=bool),
            index=self.roster.index,
        )
        # in a release: only the persons of released care-cycle blocks
        return result & self.cycle_complete if self.released else result

    @cached_property
    def costs_missing(self) -> pd.Series:
        """Per roster row: the care cycle has ended but no complete cost data were received."""
        return self.cycle_complete & ~self.costs_complete

    @cached_property
    def episode_costs(self) -> EpisodeCosts | str:
        """Episode costs of the persons whose costs are complete (:attr:`costs_complete`), or
        the reason why they cannot be computed."""
        enrolments = self.roster.loc[self.costs_complete, ["enrolment_id", "index_date"]]
        rows = self.cost_items
        rows = rows[rows["enrolment_id"].isin(enrolments["enrolment_id"])]
        try:
            return episode_costs(
                rows,
                enrolments,
                self.spec.care_cycle.start_days,
                self.spec.care_cycle.end_days,
                self.catalogue,
                self.spec.currency_year,
                id_col="enrolment_id",
            )
        except CostingError as error:
            return str(error)

    @cached_property
    def cost_persons(self) -> pd.DataFrame:
        """The persons of the cost figures (care cycle ended before the data date, within the
        filters): ``enrolment_id``, ``arm``, ``index_date`` and their episode cost
        ``total_eur`` (NaN when no complete cost data were received or the costs cannot be
        computed: missing, never 0 €)."""
        roster = self.roster.loc[self.cycle_complete]
        people = roster[["enrolment_id", "arm", "index_date"]].reset_index(drop=True)
        costs = self.episode_costs
        totals = (
            costs.totals.reindex(people["enrolment_id"]).to_numpy()
            if not isinstance(costs, str)
            else np.full(len(people), np.nan)
        )
        return people.assign(total_eur=totals)
