"""One patient's outcomes against the cohort (same pilot and arm), for the clinician's view and
the patient's one-page summary.

:func:`patient_overview` gathers, in a fixed number of queries whatever the amount of data
(each instrument's scores are read once, for the whole pilot, and scored with
:func:`vaikuttavuus.domain.scoring.score_frame` by :func:`vaikuttavuus.queries.instrument_scores`):

* every PROM instrument of the pilot with each chartable score over its time points, the
  patient's value against the same arm's median and interquartile range
  (:func:`vaikuttavuus.domain.reference.reference_band`), severity bands and the line a
  clinically important improvement reaches; the instrument's flags (``lonely``, ``insecure``);
* clinical measures (current values, i.e. not superseded by a correction) per time point,
  procedures, PREM answers and free text, the invitations;
* alerts (:class:`Alert`):

  - ``worse``: the latest follow-up value is worse than the baseline by at least the clinically
    important change (the pilot's point threshold for that score — per baseline band when the
    pilot sets one — else the instrument's minimal important change);
  - ``missed``: an invitation expired unanswered;
  - ``closing``: an open, unanswered invitation closes within :data:`CLOSING_SOON_DAYS` days;
  - ``flag``: a flag whose ``direction`` is ``lower_is_better`` (being set is the bad case,
    e.g. ``lonely``, ``insecure``) is set on the patient's latest answers to that instrument.

Everything returned is plain values (no ORM objects), so the PDF templates can use it as is.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import defer

from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.answers import display_value
from vaikuttavuus.domain.reference import reference_band
from vaikuttavuus.domain.scoring import score_range
from vaikuttavuus.domain.specs import (
    AggregateScore,
    BandScore,
    FlagScore,
    InstrumentSpec,
    ItemScore,
    MeasureSpec,
    PilotSpec,
    ResponderRule,
    Score,
    TimePointSpec,
    ValueSetScore,
)
from vaikuttavuus.models import (
    Answer,
    ClinicalMeasurement,
    Enrolment,
    InstrumentVersion,
    Invitation,
    Pilot,
    Procedure,
    Response,
    TimePoint,
)
from vaikuttavuus.queries import instrument_scores
from vaikuttavuus.services.definitions import (
    current_instrument,
    instrument_spec,
    load_measure_catalogue,
    pilot_spec,
)
from vaikuttavuus.services.reference_cache import (
    Reference,
    reference_by_time_point,
    scored_responses,
    values_by_time_point,
)

CLOSING_SOON_DAYS = 7
"""An open questionnaire closing within this many days (today included) raises an alert."""
_TOLERANCE = 1e-9

AlertKind = Literal["worse", "declined", "missed", "closing", "flag"]


@dataclass(frozen=True)
class ScoreRow:
    time_point: str
    label: str
    patient: float | None
    band: str | None
    n: int
    median: float | None
    q1: float | None
    q3: float | None
    mode: str | None = None
    """How the patient's answers were given (web, phone, paper, imported)."""
    proxy: bool = False
    """Someone else answered for the patient."""

    @property
    def answered_how(self) -> tuple[str, ...]:
        """What the page marks: the mode unless it is ``web``, and ``proxy``."""
        return answered_how(self.mode, self.proxy)


def answered_how(mode: str | None, proxy: bool) -> tuple[str, ...]:
    """The marks of a response given other than by the patient on the web: its mode
    (phone, paper, imported) and ``proxy``."""
    marks = (mode,) if mode and mode != "web" else ()
    return (*marks, "proxy") if proxy else marks


@dataclass
class ScoreSeries:
    instrument_code: str
    instrument_title: str
    score_id: str
    score_label: str
    value_range: tuple[float, float] | None
    direction: str | None
    minimal_important_change: float | None
    """The clinically important change in points for this patient (the pilot's threshold,
    per baseline band when the pilot sets one, else the instrument's)."""
    rows: list[ScoreRow] = field(default_factory=list)
    bands: list[tuple[float, float, str]] = field(default_factory=list)
    """The severity bands, lowest first: (from, up to, label) with half-open intervals."""
    min_relative: float | None = None
    """The pilot's relative responder threshold (share of the baseline), if any."""

    @property
    def baseline(self) -> float | None:
        return self.rows[0].patient if self.rows else None

    @property
    def decimals(self) -> int:
        """Decimals worth showing: three for indices on a short scale (EQ-5D), else two."""
        if self.value_range is not None and self.value_range[1] - self.value_range[0] <= 2:
            return 3
        return 2

    @property
    def improvement_needed(self) -> float | None:
        """Points of improvement that count as clinically important for this patient: the
        point threshold, or less when the pilot's relative rule (e.g. 25 % of the baseline)
        asks for less (a responder meets either)."""
        if self.baseline is None or self.minimal_important_change is None:
            return None
        needed = self.minimal_important_change
        if self.min_relative is not None and self.baseline != 0:
            needed = min(needed, self.min_relative * abs(self.baseline))
        return needed

    @property
    def important_change_line(self) -> float | None:
        """The value the patient must reach for a clinically important improvement."""
        needed = self.improvement_needed
        if self.baseline is None or needed is None:
            return None
        if self.direction == "lower_is_better":
            return self.baseline - needed
        if self.direction == "higher_is_better":
            return self.baseline + needed
        return None

    @property
    def has_patient_values(self) -> bool:
        return any(row.patient is not None for row in self.rows)

    @property
    def latest_follow_up(self) -> ScoreRow | None:
        """The latest time point after the baseline with a value of the patient."""
        for row in reversed(self.rows[1:]):
            if row.patient is not None:
                return row
        return None

    @property
    def worsening(self) -> float | None:
        """How much worse the latest follow-up is than the baseline, in points (negative:
        better); ``None`` without a baseline, a follow-up or a direction."""
        latest = self.latest_follow_up
        if self.baseline is None or latest is None or latest.patient is None:
            return None
        if self.direction == "lower_is_better":
            return latest.patient - self.baseline
        if self.direction == "higher_is_better":
            return self.baseline - latest.patient
        return None

    @property
    def is_worse(self) -> bool:
        worsening = self.worsening
        return (
            worsening is not None
            and self.minimal_important_change is not None
            and worsening >= self.minimal_important_change - _TOLERANCE
        )

    @property
    def previous_follow_up(self) -> ScoreRow | None:
        """The follow-up answered before the latest one (None when that is the baseline: a
        change from the baseline is :attr:`worsening`)."""
        latest = self.latest_follow_up
        if latest is None:
            return None
        earlier = self.rows[1 : self.rows.index(latest)]
        return next((row for row in reversed(earlier) if row.patient is not None), None)

    @property
    def decline_since_previous(self) -> float | None:
        """How much worse the latest follow-up is than the previous one, in points (negative:
        better); ``None`` without two follow-ups or a direction."""
        latest, previous = self.latest_follow_up, self.previous_follow_up
        if latest is None or previous is None or latest.patient is None:
            return None
        if previous.patient is None:
            return None
        if self.direction == "lower_is_better":
            return latest.patient - previous.patient
        if self.direction == "higher_is_better":
            return previous.patient - latest.patient
        return None

    @property
    def is_declining(self) -> bool:
        """Worse than at the previous follow-up by at least the clinically important change
        (e.g. EQ-5D-5L index 0.864 → 0.593 between 3 and 12 months)."""
        decline = self.decline_since_previous
        return (
            decline is not None
            and self.minimal_important_change is not None
            and decline >= self.minimal_important_change - _TOLERANCE
        )

    def band_label(self, value: float | None) -> str | None:
        """The band of ``value``: the bands are half-open (each up to the next one's lower
        limit, the last up to its upper limit), so a prorated score always gets one."""
        if value is None:
            return None
        for position, (low, high, label) in enumerate(self.bands):
            last = position == len(self.bands) - 1
            if low <= value and (value < high or (last and value <= high)):
                return label
        return None

    @property
    def band_shades(self) -> tuple[int, ...]:
        """Per band (lowest first), its shade from 0 (the best band, lightest) upwards: the
        darker, the worse, whichever way the score runs."""
        count = len(self.bands)
        if self.direction == "higher_is_better":
            return tuple(range(count - 1, -1, -1))
        return tuple(range(count))


@dataclass(frozen=True)
class FlagSeries:
    """A yes/no score per time point (``None``: not answered or not computable)."""

    score_id: str
    label: str
    concerning: bool
    """Being set is the bad case (``direction: lower_is_better``)."""
    values: tuple[tuple[str, str, bool | None], ...]  # (time point, label, value)

    @property
    def latest(self) -> tuple[str, str, bool] | None:
        for code, label, value in reversed(self.values):
            if value is not None:
                return (code, label, value)
        return None


@dataclass
class InstrumentOutcome:
    code: str
    title: str
    time_points: list[tuple[str, str]]
    series: list[ScoreSeries] = field(default_factory=list)
    flags: list[FlagSeries] = field(default_factory=list)


@dataclass(frozen=True)
class MeasureValue:
    value: float | str | None
    measured_on: date
    time_point: str | None
    source: str


@dataclass(frozen=True)
class MeasureHistory:
    """A clinical measure's current values: the latest, and the latest in each time point's
    window (``None`` where nothing was measured)."""

    code: str
    label: str
    unit: str | None
    kind: str
    latest: MeasureValue
    by_time_point: tuple[MeasureValue | None, ...]
    values: tuple[MeasureValue, ...]  # every current value, newest first


@dataclass(frozen=True)
class ProcedureRow:
    performed_on: date
    procedure_type: str
    type_label: str
    setting: str
    setting_label: str
    """The setting's name in the pilot definition (``procedure_settings`` or the arm)."""
    drg_code: str | None


@dataclass(frozen=True)
class PremAnswer:
    item_id: str
    question: str
    answer: str
    free_text: bool


@dataclass(frozen=True)
class PremResponse:
    instrument_code: str
    instrument_title: str
    time_point: str
    time_point_label: str
    submitted_at: datetime | None
    answers: tuple[PremAnswer, ...]
    mode: str | None = None
    proxy: bool = False

    @property
    def answered_how(self) -> tuple[str, ...]:
        return answered_how(self.mode, self.proxy)


@dataclass(frozen=True)
class InvitationRow:
    id: int
    time_point: str
    label: str
    opens_on: date
    closes_on: date
    status: str
    completed_at: datetime | None


@dataclass(frozen=True)
class Alert:
    """One alert; the page and the PDF word it by ``kind``."""

    kind: AlertKind
    time_point: str
    time_point_label: str
    instrument_title: str = ""
    score_label: str = ""
    baseline: float | None = None
    value: float | None = None
    threshold: float | None = None
    closes_on: date | None = None
    days_left: int | None = None
    previous: float | None = None
    previous_label: str = ""


@dataclass(frozen=True)
class ServiceRow:
    """A service the client received (older adults): type, provider sector, period, contacts."""

    service_type: str
    type_label: str
    provider_sector: str
    sector_label: str
    provider_name: str | None
    started_on: date
    ended_on: date | None
    contacts: int | None


@dataclass
class PatientOverview:
    time_points: list[tuple[str, str]]
    instruments: list[InstrumentOutcome]
    measures: list[MeasureHistory]
    procedures: list[ProcedureRow]
    prems: list[PremResponse]
    invitations: list[InvitationRow]
    alerts: list[Alert]
    min_cell_size: int
    services: list[ServiceRow] = field(default_factory=list)
    shows_measures: bool = True
    """The pilot has clinical measures (else the page leaves their box out)."""
    shows_procedures: bool = True
    """The pilot has procedure types (else the page leaves their box out)."""
    shows_services: bool = False
    """The pilot has service types: the page shows the services over time."""

    @property
    def series(self) -> list[ScoreSeries]:
        return [series for outcome in self.instruments for series in outcome.series]


# -- helpers ------------------------------------------------------------------------------------


def _none(value: object) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def main_scores(spec: InstrumentSpec) -> list[Score]:
    """The scores worth charting: sums, means and item scores with a declared range, and
    value-set indices (their range is what the value set can produce)."""
    return [
        score
        for score in spec.scores
        if (isinstance(score, AggregateScore | ItemScore) and score.range is not None)
        or isinstance(score, ValueSetScore)
    ]


def _rule_for(pilot: PilotSpec, instrument: str, score_id: str) -> ResponderRule | None:
    for rule in (pilot.primary_outcome, *pilot.secondary_outcomes):
        if rule.instrument == instrument and rule.score == score_id:
            return rule
    return None


def _point_threshold(
    rule: ResponderRule | None,
    score: Score,
    band_score: BandScore | None,
    baseline: float | None,
) -> float | None:
    """The pilot's point threshold (its band override for the baseline's band), else the
    instrument's minimal important change."""
    if rule is None:
        return score.minimal_important_change
    if rule.by_baseline_band and band_score is not None and baseline is not None:
        band = band_score.band_of(baseline)
        if band is not None and band.label in rule.by_baseline_band:
            return float(rule.by_baseline_band[band.label])
    return float(rule.min_improvement)


def _time_points_of(spec: PilotSpec, instrument: str, language: str) -> list[tuple[str, str]]:
    return [
        (tp.id, tp.label.get(language)) for tp in spec.time_points if instrument in tp.instruments
    ]


class ScoredCohort(Protocol):
    """An instrument's scored responses in a pilot: one patient's values and the reference of
    a score in an arm (:class:`vaikuttavuus.services.reference_cache.Entry`, or
    :class:`FreshCohort` read for this request only)."""

    def reference(self, arm: str, score: str) -> Reference: ...

    def values_of(self, enrolment_id: int) -> dict[str, dict[Hashable, Any]]: ...


class FreshCohort:
    """A scored frame read afresh (no cache)."""

    def __init__(self, scores: pd.DataFrame) -> None:
        self.scores = scores

    def reference(self, arm: str, score: str) -> Reference:
        same_arm = self.scores[self.scores["arm"] == arm] if not self.scores.empty else self.scores
        return reference_by_time_point(reference_band(same_arm, score))

    def values_of(self, enrolment_id: int) -> dict[str, dict[Hashable, Any]]:
        if self.scores.empty:
            return {}
        return values_by_time_point(self.scores[self.scores["enrolment_id"] == enrolment_id])


def _instrument_series(
    pilot: PilotSpec,
    spec: InstrumentSpec,
    cohort: ScoredCohort,
    enrolment_id: int,
    arm: str,
    language: str,
) -> InstrumentOutcome:
    mine = cohort.values_of(enrolment_id)
    time_points = _time_points_of(pilot, spec.id, language)
    outcome = InstrumentOutcome(spec.id, spec.title.get(language), time_points)

    def own(code: str, column: str) -> Any:
        value = mine.get(code, {}).get(column)
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    for score in main_scores(spec):
        band_score = next(
            (s for s in spec.scores if isinstance(s, BandScore) and s.of == score.id), None
        )
        reference = cohort.reference(arm, score.id)
        rows = []
        for code, label in time_points:
            band = own(code, band_score.id) if band_score is not None else None
            n, median, q1, q3 = reference.get(code, (0, None, None, None))
            rows.append(
                ScoreRow(
                    time_point=code,
                    label=label,
                    patient=_none(own(code, score.id)),
                    band=None if band is None else str(band),
                    n=n,
                    median=median,
                    q1=q1,
                    q3=q3,
                    mode=own(code, "mode"),
                    proxy=bool(own(code, "proxy")),
                )
            )
        bands = (
            [
                (low, high, band.text.get(language) if band.text else band.label)
                for band, low, high in band_score.intervals()
            ]
            if band_score is not None
            else []
        )
        rule = _rule_for(pilot, spec.id, score.id)
        baseline = rows[0].patient if rows else None
        outcome.series.append(
            ScoreSeries(
                instrument_code=spec.id,
                instrument_title=outcome.title,
                score_id=score.id,
                score_label=score.label.get(language) if score.label else score.id,
                value_range=score_range(spec, score),
                direction=score.direction,
                minimal_important_change=_point_threshold(rule, score, band_score, baseline),
                rows=rows,
                bands=bands,
                min_relative=rule.min_relative if rule is not None else None,
            )
        )
    for score in spec.scores:
        if isinstance(score, FlagScore):
            values = []
            for code, label in time_points:
                value = own(code, score.id)
                values.append((code, label, None if value is None else bool(value)))
            outcome.flags.append(
                FlagSeries(
                    score_id=score.id,
                    label=score.label.get(language) if score.label else score.id,
                    concerning=score.direction == "lower_is_better",
                    values=tuple(values),
                )
            )
    return outcome


def patient_series(
    session: AnySession, enrolment: Enrolment, language: str, instrument_code: str
) -> list[ScoreSeries]:
    """Every chartable score of one instrument: the patient's values and the cohort band."""
    pilot: Pilot = enrolment.pilot
    spec = instrument_spec(current_instrument(session, instrument_code))
    cohort = FreshCohort(instrument_scores(session, pilot.id, instrument_code))
    outcome = _instrument_series(
        pilot_spec(pilot), spec, cohort, enrolment.id, enrolment.arm.code, language
    )
    return outcome.series


# -- the whole page -------------------------------------------------------------------------


def _current_versions(session: AnySession, codes: Sequence[str]) -> dict[str, InstrumentVersion]:
    versions = session.scalars(
        select(InstrumentVersion)
        .where(InstrumentVersion.code.in_(list(codes)), InstrumentVersion.is_current.is_(True))
        .options(defer(InstrumentVersion.definition))  # specs are cached by content hash
    ).all()
    found = {version.code: version for version in versions}
    missing = [code for code in codes if code not in found]
    if missing:
        raise LookupError(f"instrument(s) {', '.join(missing)} not loaded; run `vaikuttavuus init`")
    return found


def time_point_of(
    measured_on: date, index_date: date, time_points: Sequence[TimePointSpec]
) -> str | None:
    """The time point whose answer window contains the date (the nearest target when windows
    overlap), or ``None``."""
    offset = (measured_on - index_date).days
    inside = [tp for tp in time_points if tp.window_open_days <= offset <= tp.window_close_days]
    if not inside:
        return None
    return min(inside, key=lambda tp: abs(tp.offset_days - offset)).id


def _measure_value(row: Any, spec: MeasureSpec | None) -> float | str | None:
    if spec is not None and spec.type == "yes_no" and row.value_num is not None:
        return "yes" if row.value_num >= 0.5 else "no"
    if row.value_text is not None:
        return str(row.value_text)
    return None if row.value_num is None else float(row.value_num)


def _measures(
    session: AnySession, enrolment: Enrolment, pilot: PilotSpec, language: str
) -> list[MeasureHistory]:
    rows = session.execute(
        select(
            ClinicalMeasurement.measure_code,
            ClinicalMeasurement.value_num,
            ClinicalMeasurement.value_text,
            ClinicalMeasurement.unit,
            ClinicalMeasurement.measured_on,
            ClinicalMeasurement.source,
        )
        .where(
            ClinicalMeasurement.enrolment_id == enrolment.id,
            ClinicalMeasurement.superseded_by_id.is_(None),
        )
        .order_by(
            ClinicalMeasurement.measured_on.desc(),
            ClinicalMeasurement.recorded_at.desc(),
            ClinicalMeasurement.id.desc(),
        )
    ).all()
    if not rows:
        return []
    catalogue = {m.id: m for m in load_measure_catalogue().measures}
    grouped: dict[str, list[MeasureValue]] = {}
    units: dict[str, str | None] = {}
    for row in rows:
        spec = catalogue.get(row.measure_code)
        grouped.setdefault(row.measure_code, []).append(
            MeasureValue(
                value=_measure_value(row, spec),
                measured_on=row.measured_on,
                time_point=time_point_of(row.measured_on, enrolment.index_date, pilot.time_points),
                source=row.source,
            )
        )
        units.setdefault(row.measure_code, row.unit)
    order = [m.id for m in catalogue.values()]
    result = []
    for code in sorted(grouped, key=lambda c: (order.index(c) if c in order else len(order), c)):
        values = grouped[code]  # newest first
        spec = catalogue.get(code)
        by_tp = tuple(
            next((v for v in values if v.time_point == tp.id), None) for tp in pilot.time_points
        )
        result.append(
            MeasureHistory(
                code=code,
                label=spec.name.get(language) if spec is not None else code,
                unit=(spec.unit if spec is not None else None) or units.get(code),
                kind=spec.type if spec is not None else "decimal",
                latest=values[0],
                by_time_point=by_tp,
                values=tuple(values),
            )
        )
    return result


def _procedures(
    session: AnySession, enrolment: Enrolment, pilot: PilotSpec, language: str
) -> list[ProcedureRow]:
    labels = {p.id: p.name.get(language) for p in pilot.procedure_types}
    rows = session.execute(
        select(
            Procedure.performed_on,
            Procedure.procedure_type,
            Procedure.setting,
            Procedure.drg_code,
        )
        .where(Procedure.enrolment_id == enrolment.id)
        .order_by(Procedure.performed_on, Procedure.id)
    ).all()
    return [
        ProcedureRow(
            performed_on=row.performed_on,
            procedure_type=row.procedure_type,
            type_label=labels.get(row.procedure_type, row.procedure_type),
            setting=row.setting,
            setting_label=pilot.setting_name(row.setting, language),
            drg_code=row.drg_code,
        )
        for row in rows
    ]


def _services(
    session: AnySession, enrolment: Enrolment, pilot: PilotSpec, language: str
) -> list[ServiceRow]:
    """The client's service episodes in order of their start."""
    from vaikuttavuus.models import ServiceExposure

    types = {c.id: c.name.get(language) for c in pilot.service_types}
    sectors = {c.id: c.name.get(language) for c in pilot.provider_sectors}
    rows = session.execute(
        select(
            ServiceExposure.service_type,
            ServiceExposure.provider_sector,
            ServiceExposure.provider_name,
            ServiceExposure.started_on,
            ServiceExposure.ended_on,
            ServiceExposure.contacts,
        )
        .where(ServiceExposure.enrolment_id == enrolment.id)
        .order_by(ServiceExposure.started_on, ServiceExposure.id)
    ).all()
    return [
        ServiceRow(
            service_type=row.service_type,
            type_label=types.get(row.service_type, row.service_type),
            provider_sector=row.provider_sector,
            sector_label=sectors.get(row.provider_sector, row.provider_sector),
            provider_name=row.provider_name,
            started_on=row.started_on,
            ended_on=row.ended_on,
            contacts=row.contacts,
        )
        for row in rows
    ]


def _invitations(
    session: AnySession, enrolment: Enrolment, pilot: PilotSpec, language: str
) -> list[InvitationRow]:
    labels = {tp.id: tp.label.get(language) for tp in pilot.time_points}
    rows = session.execute(
        select(
            Invitation.id,
            TimePoint.code,
            Invitation.opens_on,
            Invitation.closes_on,
            Invitation.status,
            Invitation.completed_at,
        )
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id)
        .order_by(TimePoint.ordinal)
    ).all()
    return [
        InvitationRow(
            id=row.id,
            time_point=row.code,
            label=labels.get(row.code, row.code),
            opens_on=row.opens_on,
            closes_on=row.closes_on,
            status=row.status,
            completed_at=row.completed_at,
        )
        for row in rows
    ]


def _prems(
    session: AnySession,
    enrolment: Enrolment,
    pilot: PilotSpec,
    codes: Sequence[str],
    language: str,
) -> list[PremResponse]:
    if not codes:
        return []
    rows = session.execute(
        select(
            Response.id,
            Response.instrument_code,
            Response.instrument_version_id,
            Response.submitted_at,
            Response.mode,
            Response.proxy,
            TimePoint.code.label("time_point"),
            TimePoint.ordinal,
            Answer.item_id,
            Answer.value,
        )
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .join(Answer, Answer.response_id == Response.id)
        .where(
            Response.enrolment_id == enrolment.id,
            Response.status == "submitted",
            Response.instrument_code.in_(list(codes)),
        )
        .order_by(TimePoint.ordinal, Response.instrument_code, Response.id)
    ).all()
    by_response: dict[int, list[Any]] = {}
    for row in rows:
        by_response.setdefault(row.id, []).append(row)
    version_ids = {rows_[0].instrument_version_id for rows_ in by_response.values()}
    versions = (
        {
            v.id: v
            for v in session.scalars(
                select(InstrumentVersion)
                .where(InstrumentVersion.id.in_(version_ids))
                .options(defer(InstrumentVersion.definition))
            )
        }
        if version_ids
        else {}
    )
    labels = {tp.id: tp.label.get(language) for tp in pilot.time_points}
    result = []
    for response_rows in by_response.values():
        first = response_rows[0]
        spec = instrument_spec(versions[first.instrument_version_id])
        stored = {row.item_id: row.value for row in response_rows}
        answers = tuple(
            PremAnswer(
                item_id=item.id,
                question=item.text.get(language),
                answer=display_value(spec, item, stored[item.id], language),
                free_text=item.type == "text",
            )
            for item in spec.items
            if item.id in stored
        )
        result.append(
            PremResponse(
                instrument_code=spec.id,
                instrument_title=spec.title.get(language),
                time_point=first.time_point,
                time_point_label=labels.get(first.time_point, first.time_point),
                submitted_at=first.submitted_at,
                answers=answers,
                mode=first.mode,
                proxy=bool(first.proxy),
            )
        )
    return result


def _alerts(
    instruments: Iterable[InstrumentOutcome], invitations: Sequence[InvitationRow], today: date
) -> list[Alert]:
    alerts: list[Alert] = []
    for outcome in instruments:
        for series in outcome.series:
            latest = series.latest_follow_up
            if series.is_worse and latest is not None:
                alerts.append(
                    Alert(
                        kind="worse",
                        time_point=latest.time_point,
                        time_point_label=latest.label,
                        instrument_title=series.instrument_title,
                        score_label=series.score_label,
                        baseline=series.baseline,
                        value=latest.patient,
                        threshold=series.minimal_important_change,
                    )
                )
            previous = series.previous_follow_up
            if series.is_declining and latest is not None and previous is not None:
                alerts.append(
                    Alert(
                        kind="declined",
                        time_point=latest.time_point,
                        time_point_label=latest.label,
                        instrument_title=series.instrument_title,
                        score_label=series.score_label,
                        value=latest.patient,
                        threshold=series.minimal_important_change,
                        previous=previous.patient,
                        previous_label=previous.label,
                    )
                )
        for flag in outcome.flags:
            latest_flag = flag.latest
            if flag.concerning and latest_flag is not None and latest_flag[2]:
                alerts.append(
                    Alert(
                        kind="flag",
                        time_point=latest_flag[0],
                        time_point_label=latest_flag[1],
                        instrument_title=outcome.title,
                        score_label=flag.label,
                    )
                )
    for invitation in invitations:
        unanswered = invitation.completed_at is None
        if invitation.status == "expired" and unanswered:
            alerts.append(
                Alert(
                    kind="missed",
                    time_point=invitation.time_point,
                    time_point_label=invitation.label,
                    closes_on=invitation.closes_on,
                )
            )
        elif invitation.status == "open" and unanswered:
            days_left = (invitation.closes_on - today).days
            if 0 <= days_left <= CLOSING_SOON_DAYS:
                alerts.append(
                    Alert(
                        kind="closing",
                        time_point=invitation.time_point,
                        time_point_label=invitation.label,
                        closes_on=invitation.closes_on,
                        days_left=days_left,
                    )
                )
    return alerts


def patient_overview(
    session: AnySession,
    enrolment: Enrolment,
    language: str,
    today: date,
    *,
    cached: bool = True,
) -> PatientOverview:
    """Everything the clinician's patient page and the patient summary show.

    The cohort's scored responses come from :mod:`vaikuttavuus.services.reference_cache`
    (brought up to date with what the session's transaction sees); ``cached=False`` reads
    and scores them afresh (the same numbers, slower)."""
    pilot = enrolment.pilot
    spec = pilot_spec(pilot)
    codes = list(spec.instrument_ids)
    versions = _current_versions(session, codes)
    specs = {code: instrument_spec(versions[code]) for code in codes}
    arm = enrolment.arm.code
    proms = [code for code in codes if specs[code].kind == "prom"]
    cohorts: dict[str, ScoredCohort]
    if cached:
        cohorts = dict(scored_responses(session, pilot.id, proms))
    else:
        cohorts = {code: FreshCohort(instrument_scores(session, pilot.id, code)) for code in proms}
    instruments = [
        _instrument_series(spec, specs[code], cohorts[code], enrolment.id, arm, language)
        for code in proms
    ]
    invitations = _invitations(session, enrolment, spec, language)
    return PatientOverview(
        time_points=[(tp.id, tp.label.get(language)) for tp in spec.time_points],
        instruments=instruments,
        measures=_measures(session, enrolment, spec, language),
        procedures=_procedures(session, enrolment, spec, language),
        prems=_prems(
            session, enrolment, spec, [c for c in codes if specs[c].kind == "prem"], language
        ),
        invitations=invitations,
        alerts=_alerts(instruments, invitations, today),
        min_cell_size=spec.min_cell_size,
        services=_services(session, enrolment, spec, language) if spec.service_types else [],
        shows_measures=any(
            not m.pilots or spec.id in m.pilots for m in load_measure_catalogue().measures
        ),
        shows_procedures=bool(spec.procedure_types),
        shows_services=bool(spec.service_types),
    )
