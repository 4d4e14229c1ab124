"""Pseudonymised exports of a pilot's data for its pilot leads (``docs/exports.md``).

Shapes
    * **long** — one row per person × time point × item: the answers as stored (``value``, and
      ``value_num`` when numeric) with the instrument version, submission date, language,
      mode (web, phone, paper, imported) and proxy (1 when someone else answered).
    * **wide** — one row per person: arm, status, index date, the pilot's baseline covariates,
      every score of every instrument at every time point (scored with the instrument version
      that was answered, exactly as the analytics score it), the mode and proxy of each
      response and the episode cost when the pilot has cost data.
    * **FHIR** — a ``Bundle`` of type ``collection`` holding one validated R4
      ``QuestionnaireResponse`` per submitted response (:func:`vaikuttavuus.fhir.response_to_fhir`).

Privacy
    * A person is identified only by ``person_key`` = ``keyed_hash(str(person_id), "export")``:
      HMAC-SHA256 under the instance's pseudonym key, stable within the instance, not
      reversible without the key and unrelated to the pseudonym the clinic uses. Names, contact
      details, identity-code hashes and clinic pseudonyms are never read by these queries.
      Erased persons are left out.
    * Optional date shifting by ±N days: each person gets one offset in [−N, N] derived from
      another keyed hash of the person id (the same offset for all of that person's dates,
      and the same in every export with the same N), applied to every date of the person,
      including answers to date items.
    * Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
      ``@``, tab or carriage return, after any spaces) get a leading ``'``; numbers stay
      numbers. XLSX cells holding text are always written as text.

Memory stays flat as the data grow: enrolments are read in chunks of :data:`CHUNK_SIZE` by
key ranges (Core selects, no ORM objects), each chunk's answers or scores are read with one
query per table, written out, and dropped. CSV is yielded as it is produced; XLSX is written by
openpyxl's write-only workbook to a temporary file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import io
import json
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Row, func, select

from vaikuttavuus import queries
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.answers import MULTI_SEPARATOR
from vaikuttavuus.domain.costing import episode_costs
from vaikuttavuus.domain.scoring import score_metadata
from vaikuttavuus.domain.specs import InstrumentSpec, PilotSpec
from vaikuttavuus.domain.spreadsheet import spreadsheet_safe
from vaikuttavuus.fhir import response_to_fhir
from vaikuttavuus.models import (
    Answer,
    Arm,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    InstrumentVersion,
    Person,
    Pilot,
    Response,
    TimePoint,
)
from vaikuttavuus.security.tokens import keyed_hash, pseudonym_key
from vaikuttavuus.services.definitions import (
    instrument_spec,
    load_measure_catalogue,
    pilot_spec,
)

Shape = Literal["long", "wide"]
SHAPES: tuple[Shape, ...] = ("long", "wide")
FORMATS = ("csv", "xlsx", "fhir")
PERSON_KEY_PURPOSE = "export"
DATE_SHIFT_PURPOSE = "export-date-shift"
RESPONSE_KEY_PURPOSE = "export-response"
MAX_DATE_SHIFT_DAYS = 365
CHUNK_SIZE = 1000
"""Enrolments read, processed and written per step."""
CSV_FLUSH_ROWS = 500
XLSX_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
_ILLEGAL_XML = str.maketrans(
    dict.fromkeys([*range(9), 11, 12, *range(14, 32)], None)  # what openpyxl refuses
)

LONG_COLUMNS = (
    "person_key",
    "arm",
    "time_point",
    "instrument",
    "version",
    "item_id",
    "value",
    "value_num",
    "submitted_date",
    "language",
    "mode",
    "proxy",
)
DICTIONARY_COLUMNS = ("column", "type", "description", "codes")


class ExportOptionsError(ValueError):
    """Options that make no sense; ``fields`` names them (``date_shift``, ``from``, ``to``)."""

    def __init__(self, fields: Sequence[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = tuple(fields)


@dataclass(frozen=True)
class ExportOptions:
    """``date_shift_days`` N: shift each person's dates by an offset in [−N, N] (0: none).
    ``start``/``end``: only enrolments whose index date falls in the period (either end open),
    as on the cohort pages."""

    date_shift_days: int = 0
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.date_shift_days <= MAX_DATE_SHIFT_DAYS:
            problems.append("date_shift")
        if self.start is not None and self.end is not None and self.start > self.end:
            problems.append("to")
        if problems:
            raise ExportOptionsError(problems)

    def as_details(self) -> dict[str, Any]:
        return {
            "date_shift_days": self.date_shift_days,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


def parse_options(args: Mapping[str, Any]) -> ExportOptions:
    """Options from a query string or form (``date_shift``, ``from``, ``to``); raises
    :class:`ExportOptionsError` naming every field that could not be understood."""
    problems: list[str] = []
    raw_shift = str(args.get("date_shift") or "").strip()
    shift = 0
    if raw_shift:
        if raw_shift.isascii() and raw_shift.isdigit() and len(raw_shift) <= 4:
            shift = int(raw_shift)
            if shift > MAX_DATE_SHIFT_DAYS:
                problems.append("date_shift")
        else:
            problems.append("date_shift")

    def day(name: str) -> date | None:
        raw = str(args.get(name) or "").strip()
        if not raw:
            return None
        if len(raw) == 10:
            with contextlib.suppress(ValueError):
                return date.fromisoformat(raw)
        _invalid(name)
        return None

    def _invalid(name: str) -> None:
        problems.append(name)

    start, end = day("from"), day("to")
    if problems:
        raise ExportOptionsError(problems)
    return ExportOptions(date_shift_days=shift, start=start, end=end)


# -- pseudonymisation ---------------------------------------------------------------------------


class KeyedHasher:
    """``keyed_hash(value, purpose)`` for many values: the purpose key (HMAC of the purpose
    under the instance's pseudonym key) is derived once instead of for every value. Gives
    exactly :func:`vaikuttavuus.security.tokens.keyed_hash`."""

    def __init__(self, purpose: str) -> None:
        self._key = hmac.new(pseudonym_key(), purpose.encode("utf-8"), hashlib.sha256).digest()

    def __call__(self, value: str) -> str:
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def person_key(person_id: int) -> str:
    """The export's key for a person: ``keyed_hash(str(person_id), "export")``."""
    return keyed_hash(str(person_id), PERSON_KEY_PURPOSE)


def _offset(digest: str, days: int) -> int:
    return int(digest[:16], 16) % (2 * days + 1) - days


def date_offset(person_id: int, days: int) -> int:
    """The person's date shift in [−days, days] (0 when ``days`` is 0)."""
    if days <= 0:
        return 0
    return _offset(keyed_hash(str(person_id), DATE_SHIFT_PURPOSE), days)


class Pseudonymiser:
    """Person keys and date offsets for one export."""

    def __init__(self, date_shift_days: int) -> None:
        self.days = date_shift_days
        self._key = KeyedHasher(PERSON_KEY_PURPOSE)
        self._shift = KeyedHasher(DATE_SHIFT_PURPOSE) if date_shift_days > 0 else None

    def chunk(self, person_ids: Iterable[int]) -> Pseudonyms:
        keys = {pid: self._key(str(pid)) for pid in person_ids}
        shift = self._shift
        offsets = {pid: 0 if shift is None else _offset(shift(str(pid)), self.days) for pid in keys}
        return Pseudonyms(keys, offsets)


@dataclass(frozen=True)
class Pseudonyms:
    """Keys and date offsets (days) of the persons of one chunk."""

    keys: dict[int, str]
    offsets: dict[int, int]

    def shift(self, person_id: int, day: date | None) -> date | None:
        if day is None:
            return None
        offset = self.offsets[person_id]
        return day + timedelta(days=offset) if offset else day


# -- safe cells ---------------------------------------------------------------------------------


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, also after a separator, gets a ``'``
    (:func:`~vaikuttavuus.domain.spreadsheet.spreadsheet_safe`); other values are returned as
    they are (numbers stay numbers)."""
    return spreadsheet_safe(value) if type(value) is str else value


def _safe_row(row: Sequence[Any]) -> list[Any]:
    """Cells for the csv writer: text neutralised, ``True``/``False`` as 1/0; ``None`` is
    written empty, numbers with ``str`` (the shortest exact form) and dates in ISO form."""
    return [
        neutralise(value) if type(value) is str else int(value) if type(value) is bool else value
        for value in row
    ]


def _number(value: Any) -> float | int | None:
    """A number as written out: ``None`` for missing, whole numbers as ``int``."""
    if value is None or value is pd.NA:
        return None
    number = float(value)
    if math.isnan(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


# -- the rows, chunk by chunk -------------------------------------------------------------------


def _filters(pilot_id: int, options: ExportOptions) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Enrolment.pilot_id == pilot_id,
        Person.erased_at.is_(None),
    ]
    if options.start is not None:
        conditions.append(Enrolment.index_date >= options.start)
    if options.end is not None:
        conditions.append(Enrolment.index_date <= options.end)
    return conditions


@dataclass(frozen=True)
class Chunk:
    """Enrolments with ``low < id <= high`` that pass the filters."""

    low: int
    high: int
    enrolments: list[Row[*tuple[Any, ...]]]


def enrolment_chunks(
    session: AnySession, pilot: Pilot, options: ExportOptions, size: int | None = None
) -> Iterator[Chunk]:
    size = size or CHUNK_SIZE
    last = 0
    conditions = _filters(pilot.id, options)
    while True:
        rows = (
            session.connection()
            .execute(
                select(
                    Enrolment.id,
                    Enrolment.person_id,
                    Arm.code.label("arm"),
                    Enrolment.index_date,
                    Enrolment.status,
                    Person.birth_year,
                    Person.sex,
                    Person.lives_alone,
                )
                .join(Person, Enrolment.person_id == Person.id)
                .join(Arm, Enrolment.arm_id == Arm.id)
                .where(*conditions, Enrolment.id > last)
                .order_by(Enrolment.id)
                .limit(size)
            )
            .all()
        )
        if not rows:
            return
        yield Chunk(last, rows[-1].id, list(rows))
        last = rows[-1].id


class _Specs:
    """Instrument specs by version id, with each version's item order and date items."""

    def __init__(self, session: AnySession) -> None:
        self.session = session
        self.by_version: dict[int, InstrumentSpec] = {}
        self.item_order: dict[int, dict[str, int]] = {}
        self.date_items: dict[int, frozenset[str]] = {}

    def __call__(self, version_id: int) -> InstrumentSpec:
        spec = self.by_version.get(version_id)
        if spec is None:
            version = self.session.get(InstrumentVersion, version_id)
            assert version is not None
            spec = instrument_spec(version)
            self.by_version[version_id] = spec
            items = spec.items
            self.item_order[version_id] = {item.id: n for n, item in enumerate(items)}
            self.date_items[version_id] = frozenset(i.id for i in items if i.type == "date")
        return spec


def _answer_rows(
    session: AnySession, pilot: Pilot, options: ExportOptions, chunk: Chunk
) -> list[Row[*tuple[Any, ...]]]:
    return list(
        session.connection()
        .execute(
            select(
                Response.id.label("response_id"),
                Response.enrolment_id,
                Enrolment.person_id,
                TimePoint.code.label("time_point"),
                TimePoint.ordinal,
                Response.instrument_code,
                Response.instrument_version_id,
                InstrumentVersion.version,
                Response.submitted_at,
                Response.language,
                Response.mode,
                Response.proxy,
                Answer.item_id,
                Answer.value,
                Answer.value_num,
            )
            .join(Enrolment, Response.enrolment_id == Enrolment.id)
            .join(Person, Enrolment.person_id == Person.id)
            .join(TimePoint, Response.time_point_id == TimePoint.id)
            .join(InstrumentVersion, Response.instrument_version_id == InstrumentVersion.id)
            .join(Answer, Answer.response_id == Response.id)
            .where(
                *_filters(pilot.id, options),
                Enrolment.id > chunk.low,
                Enrolment.id <= chunk.high,
                Response.status == "submitted",
            )
        )
        .all()
    )


def _instrument_order(spec: PilotSpec) -> dict[tuple[str, str], int]:
    return {
        (tp.id, code): position
        for tp in spec.time_points
        for position, code in enumerate(tp.instruments)
    }


def _shift_iso_date(value: str, offset: int) -> str:
    try:
        return (date.fromisoformat(value) + timedelta(days=offset)).isoformat()
    except ValueError:
        return value


def long_header() -> list[str]:
    return list(LONG_COLUMNS)


def long_rows(session: AnySession, pilot: Pilot, options: ExportOptions) -> Iterator[list[Any]]:
    """The long shape, one list of cell values per answer (header not included), ordered by
    enrolment, time point, the instruments' order at that time point and item order."""
    specs = _Specs(session)
    order = _instrument_order(pilot_spec(pilot))
    last = len(order)
    pseudonymiser = Pseudonymiser(options.date_shift_days)
    for chunk in enrolment_chunks(session, pilot, options):
        people = pseudonymiser.chunk(row.person_id for row in chunk.enrolments)
        arms = {row.id: row.arm for row in chunk.enrolments}
        rows = _answer_rows(session, pilot, options, chunk)
        for version_id in {row.instrument_version_id for row in rows}:
            specs(version_id)
        item_order, date_items = specs.item_order, specs.date_items
        rows.sort(
            key=lambda r: (
                r.enrolment_id,
                r.ordinal,
                order.get((r.time_point, r.instrument_code), last),
                r.response_id,
                item_order[r.instrument_version_id].get(r.item_id, 1 << 30),
            )
        )
        keys, offsets = people.keys, people.offsets
        submitted_days: dict[int, date | None] = {}
        for (
            response_id,
            enrolment_id,
            person_id,
            time_point,
            _ordinal,
            instrument,
            version_id,
            version,
            submitted_at,
            language,
            mode,
            proxy,
            item_id,
            value,
            value_num,
        ) in rows:
            offset = offsets[person_id]
            day = submitted_days.get(response_id)
            if day is None and submitted_at is not None:
                day = submitted_at.date() + timedelta(days=offset)
                submitted_days[response_id] = day
            text = (
                _shift_iso_date(value, offset)
                if offset and item_id in date_items[version_id]
                else value
            )
            yield [
                keys[person_id],
                arms[enrolment_id],
                time_point,
                instrument,
                version,
                item_id,
                neutralise(text),
                None if value_num is None else _number(value_num),
                day,
                language,
                mode,
                1 if proxy else 0,
            ]


# -- wide ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreColumn:
    name: str
    instrument: str
    score: str
    time_point: str
    kind: str  # number, band or flag; mode and proxy for how the response was given


@dataclass(frozen=True)
class WideLayout:
    header: list[str]
    covariates: tuple[str, ...]  # age, sex, lives_alone among them, in the pilot's order
    measures: tuple[str, ...]  # measure ids whose baseline value is a covariate
    scores: tuple[ScoreColumn, ...]
    costs: bool
    baseline_close_days: int


def _current_specs(session: AnySession, codes: Sequence[str]) -> dict[str, InstrumentSpec]:
    versions = session.scalars(
        select(InstrumentVersion).where(
            InstrumentVersion.code.in_(list(codes)), InstrumentVersion.is_current.is_(True)
        )
    ).all()
    return {version.code: instrument_spec(version) for version in versions}


def wide_layout(session: AnySession, pilot: Pilot) -> WideLayout:
    """The wide shape's columns for ``pilot``: fixed columns, covariates, one column per
    instrument × score × time point (instruments in the pilot's order, scores in the
    definition's order, time points in schedule order) and ``cost_total_eur``."""
    spec = pilot_spec(pilot)
    catalogue = {m.id for m in load_measure_catalogue().measures}
    demographic = [c for c in spec.covariates if c in {"age", "sex", "lives_alone"}]
    measures = tuple(c for c in spec.covariates if c in catalogue)
    specs = _current_specs(session, spec.instrument_ids)
    scores = []
    for code in spec.instrument_ids:
        instrument = specs.get(code)
        if instrument is None:
            continue
        time_points = [tp.id for tp in spec.time_points if code in tp.instruments]
        for info in score_metadata(instrument):
            for tp in time_points:
                scores.append(ScoreColumn(f"{code}_{info.id}_{tp}", code, info.id, tp, info.kind))
        for what in ("mode", "proxy"):
            for tp in time_points:
                scores.append(ScoreColumn(f"{code}_{what}_{tp}", code, what, tp, what))
    has_costs = (
        session.scalar(
            select(CostItem.id)
            .join(Enrolment, CostItem.enrolment_id == Enrolment.id)
            .where(Enrolment.pilot_id == pilot.id)
            .limit(1)
        )
        is not None
    )
    header = ["person_key", "arm", "status", "index_date"]
    header += ["age_at_index" if c == "age" else c for c in demographic]
    header += [f"{m}_baseline" for m in measures]
    header += [column.name for column in scores]
    if has_costs:
        header.append("cost_total_eur")
    return WideLayout(
        header=header,
        covariates=tuple(demographic),
        measures=measures,
        scores=tuple(scores),
        costs=has_costs,
        baseline_close_days=spec.baseline.window_close_days,
    )


def _chunk_scores(
    session: AnySession, pilot: Pilot, layout: WideLayout, ids: list[int]
) -> dict[tuple[int, str, str], dict[str, Any]]:
    """(enrolment id, instrument, time point) → that response's scores."""
    found: dict[tuple[int, str, str], dict[str, Any]] = {}
    for code in dict.fromkeys(column.instrument for column in layout.scores):
        frame = queries.instrument_scores(session, pilot.id, code, enrolment_ids=ids)
        if frame.empty:
            continue
        names = [c for c in frame.columns if c not in queries.RESPONSE_COLUMNS]
        names += ["mode", "proxy"]
        for record in frame[["enrolment_id", "time_point", *names]].itertuples(index=False):
            values = dict(zip(names, record[2:], strict=True))
            found[(int(record[0]), code, str(record[1]))] = values
    return found


def _baseline_measures(
    session: AnySession, layout: WideLayout, chunk: Chunk
) -> dict[tuple[int, str], float | str | None]:
    """(enrolment id, measure) → the latest current value measured by the end of the
    baseline window."""
    if not layout.measures:
        return {}
    index_dates = {row.id: row.index_date for row in chunk.enrolments}
    rows = (
        session.connection()
        .execute(
            select(
                ClinicalMeasurement.enrolment_id,
                ClinicalMeasurement.measure_code,
                ClinicalMeasurement.value_num,
                ClinicalMeasurement.value_text,
                ClinicalMeasurement.measured_on,
            )
            .where(
                ClinicalMeasurement.enrolment_id > chunk.low,
                ClinicalMeasurement.enrolment_id <= chunk.high,
                ClinicalMeasurement.measure_code.in_(list(layout.measures)),
                ClinicalMeasurement.superseded_by_id.is_(None),
            )
            .order_by(ClinicalMeasurement.measured_on, ClinicalMeasurement.id)
        )
        .all()
    )
    values: dict[tuple[int, str], float | str | None] = {}
    for row in rows:
        index_date = index_dates.get(row.enrolment_id)
        if index_date is None:
            continue
        if row.measured_on <= index_date + timedelta(days=layout.baseline_close_days):
            values[(row.enrolment_id, row.measure_code)] = (
                _number(row.value_num) if row.value_num is not None else row.value_text
            )
    return values


def _chunk_costs(
    session: AnySession, pilot: Pilot, catalogue: Any, chunk: Chunk
) -> dict[int, float]:
    spec = pilot_spec(pilot)
    ids = [row.id for row in chunk.enrolments]
    enrolments = pd.DataFrame(
        {
            "enrolment_id": ids,
            "index_date": pd.to_datetime([row.index_date for row in chunk.enrolments]),
        }
    )
    costs = episode_costs(
        queries.cost_rows(session, pilot.id, ids),
        enrolments,
        spec.care_cycle.start_days,
        spec.care_cycle.end_days,
        catalogue,
        spec.currency_year,
        id_col="enrolment_id",
    )
    return {
        int(k): round(float(v), 2)
        for k, v in zip(costs.totals.index, costs.totals, strict=True)
    }


def _score_value(value: Any, kind: str) -> Any:
    if value is None or value is pd.NA:
        return None
    if kind == "mode":
        return str(value)
    if kind in {"flag", "proxy"}:
        return 1 if bool(value) else 0
    if kind == "band":
        return str(value)
    return _number(value)


def wide_rows(
    session: AnySession, pilot: Pilot, layout: WideLayout, options: ExportOptions
) -> Iterator[list[Any]]:
    """The wide shape, one list of cell values per enrolment (header not included)."""
    catalogue = None
    if layout.costs:
        from vaikuttavuus.services.catalogue import costing_catalogue

        catalogue = costing_catalogue(session)
    pseudonymiser = Pseudonymiser(options.date_shift_days)
    for chunk in enrolment_chunks(session, pilot, options):
        ids = [row.id for row in chunk.enrolments]
        people = pseudonymiser.chunk(row.person_id for row in chunk.enrolments)
        scores = _chunk_scores(session, pilot, layout, ids)
        measures = _baseline_measures(session, layout, chunk)
        costs = _chunk_costs(session, pilot, catalogue, chunk) if layout.costs else {}
        for row in chunk.enrolments:
            cells: list[Any] = [
                people.keys[row.person_id],
                row.arm,
                row.status,
                people.shift(row.person_id, row.index_date),
            ]
            for covariate in layout.covariates:
                if covariate == "age":
                    cells.append(row.index_date.year - row.birth_year if row.birth_year else None)
                elif covariate == "sex":
                    cells.append(row.sex)
                else:
                    cells.append(None if row.lives_alone is None else int(row.lives_alone))
            cells += [measures.get((row.id, measure)) for measure in layout.measures]
            for column in layout.scores:
                found = scores.get((row.id, column.instrument, column.time_point))
                cells.append(
                    None if found is None else _score_value(found.get(column.score), column.kind)
                )
            if layout.costs:
                cells.append(costs.get(row.id))
            yield cells


# -- counts -------------------------------------------------------------------------------------


def count_rows(session: AnySession, pilot: Pilot, shape: str, options: ExportOptions) -> int:
    """Rows an export will hold: answers (long), enrolments (wide) or responses (FHIR)."""
    conditions = _filters(pilot.id, options)
    if shape == "wide":
        statement = (
            select(func.count(Enrolment.id))
            .join(Person, Enrolment.person_id == Person.id)
            .where(*conditions)
        )
    else:
        counted = Answer.id if shape == "long" else Response.id
        statement = (
            select(func.count(counted))
            .select_from(Response)
            .join(Enrolment, Response.enrolment_id == Enrolment.id)
            .join(Person, Enrolment.person_id == Person.id)
            .where(*conditions, Response.status == "submitted")
        )
        if shape == "long":
            statement = statement.join(Answer, Answer.response_id == Response.id)
    return int(session.scalar(statement) or 0)


# -- data dictionary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DictionaryEntry:
    column: str
    type: str
    description: str
    codes: str = ""

    def cells(self) -> list[str]:
        return [self.column, self.type, self.description, self.codes]


def _shift_note(options: ExportOptions) -> str:
    if not options.date_shift_days:
        return ""
    return " " + _(
        "Shifted by the person's own offset of at most %(days)s days (the same for all of the "
        "person's dates).",
        days=options.date_shift_days,
    )


def _person_key_entry() -> DictionaryEntry:
    return DictionaryEntry(
        "person_key",
        "text",
        _(
            "Pseudonymous person key: a keyed hash (HMAC-SHA256) of the person, stable within "
            "this installation and not reversible without its key."
        ),
    )


def _mode_entry(column: str) -> DictionaryEntry:
    return DictionaryEntry(
        column,
        "text",
        _(
            "How the answers were given: web (the person's own link), phone or paper (entered "
            "by staff), imported (brought in from another system)."
        ),
        "web; phone; paper; imported",
    )


def _proxy_entry(column: str) -> DictionaryEntry:
    return DictionaryEntry(
        column,
        "flag",
        _("Someone else (a relative or a staff member) answered for the person: 1 yes, 0 no."),
        "1 = yes; 0 = no",
    )


def _arm_entry() -> DictionaryEntry:
    return DictionaryEntry("arm", "text", _("Arm (comparison group) of the pilot."))


def _codes(spec: InstrumentSpec, item_id: str, language: str) -> str:
    item = spec.item(item_id)
    if item.type in {"single_choice", "multiple_choice"}:
        return "; ".join(f"{o.code} = {o.text.get(language)}" for o in spec.options_for(item))
    if item.type == "yes_no":
        return "1 = yes; 0 = no"
    if item.value_range is not None:
        low, high = item.value_range
        return f"{low:g}–{high:g}" + (f" {item.unit}" if item.unit else "")
    return ""


def dictionary(
    session: AnySession, pilot: Pilot, shape: Shape, options: ExportOptions, language: str
) -> list[DictionaryEntry]:
    """Every column of the shape, described in ``language``; for the long shape also each item
    of each instrument version (the values of ``item_id``) with its answer codes."""
    with force_locale(language):
        return _dictionary_entries(session, pilot, shape, options, language)


def _dictionary_entries(
    session: AnySession, pilot: Pilot, shape: Shape, options: ExportOptions, language: str
) -> list[DictionaryEntry]:
    shifted = _shift_note(options)
    spec = pilot_spec(pilot)
    time_points = ", ".join(tp.id for tp in spec.time_points)
    if shape == "long":
        entries = [
            _person_key_entry(),
            _arm_entry(),
            DictionaryEntry("time_point", "text", _("Time point: %(codes)s.", codes=time_points)),
            DictionaryEntry("instrument", "text", _("Instrument (questionnaire) id.")),
            DictionaryEntry("version", "text", _("Version of the instrument that was answered.")),
            DictionaryEntry("item_id", "text", _("Item (question) id; listed below.")),
            DictionaryEntry(
                "value",
                "text",
                _(
                    "The answer as stored: a choice code, a number with a dot, an ISO date, "
                    "several codes joined by ';', yes/no as 1/0, or free text."
                ),
            ),
            DictionaryEntry(
                "value_num", "number", _("The answer as a number when it is numeric, else empty.")
            ),
            DictionaryEntry(
                "submitted_date", "date", _("Date the answers were submitted.") + shifted
            ),
            DictionaryEntry("language", "text", _("Language of the answers: fi, sv or en.")),
            _mode_entry("mode"),
            _proxy_entry("proxy"),
        ]
        versions = session.scalars(
            select(InstrumentVersion)
            .where(InstrumentVersion.code.in_(list(spec.instrument_ids)))
            .order_by(InstrumentVersion.code, InstrumentVersion.id)
        ).all()
        for version in versions:
            instrument = instrument_spec(version)
            for item in instrument.items:
                entries.append(
                    DictionaryEntry(
                        f"item_id = {item.id}",
                        f"{instrument.id}@{instrument.version}: {item.type}",
                        item.text.get(language),
                        _codes(instrument, item.id, language),
                    )
                )
        return entries
    layout = wide_layout(session, pilot)
    entries = [
        _person_key_entry(),
        _arm_entry(),
        DictionaryEntry("status", "text", _("Enrolment status: active, withdrawn or completed.")),
        DictionaryEntry(
            "index_date",
            "date",
            _("Date of the index event (procedure or enrolment).") + shifted,
        ),
    ]
    descriptions = {
        "age": DictionaryEntry(
            "age_at_index", "integer", _("Age in years at the index date (year difference).")
        ),
        "sex": DictionaryEntry("sex", "text", _("Sex: male, female or other.")),
        "lives_alone": DictionaryEntry("lives_alone", "flag", _("Lives alone: 1 yes, 0 no.")),
    }
    entries += [descriptions[c] for c in layout.covariates]
    measures = {m.id: m for m in load_measure_catalogue().measures}
    for code in layout.measures:
        measure = measures[code]
        entries.append(
            DictionaryEntry(
                f"{code}_baseline",
                "number" if measure.type in {"decimal", "integer"} else "text",
                _(
                    "%(measure)s: the latest value measured by the end of the baseline window.",
                    measure=measure.name.get(language),
                ),
                measure.unit or ", ".join(measure.grades),
            )
        )
    specs = _current_specs(session, spec.instrument_ids)
    labels = {tp.id: tp.label.get(language) for tp in spec.time_points}
    for column in layout.scores:
        instrument = specs[column.instrument]
        if column.kind in {"mode", "proxy"}:
            entry = (_mode_entry if column.kind == "mode" else _proxy_entry)(column.name)
            where = f"{instrument.title.get(language)}, {labels[column.time_point]}: "
            entries.append(replace(entry, description=where + entry.description))
            continue
        info = next(i for i in score_metadata(instrument) if i.id == column.score)
        if info.kind == "band":
            codes = "; ".join(info.bands)
        elif info.kind == "flag":
            codes = "1 = yes; 0 = no"
        elif info.range is not None:
            codes = f"{info.range[0]:g}–{info.range[1]:g}"
        else:
            codes = ""
        direction = {
            "lower_is_better": _("lower is better"),
            "higher_is_better": _("higher is better"),
        }.get(info.direction or "", "")
        entries.append(
            DictionaryEntry(
                column.name,
                {"number": "number", "band": "text", "flag": "flag"}[info.kind],
                f"{instrument.title.get(language)}: {info.label_in(language)}, "
                f"{labels[column.time_point]}" + (f" ({direction})" if direction else ""),
                codes,
            )
        )
    if layout.costs:
        entries.append(
            DictionaryEntry(
                "cost_total_eur",
                "number",
                _(
                    "Episode cost in euros at %(year)s prices over the care cycle (%(start)s to "
                    "%(end)s days from the index date).",
                    year=spec.currency_year,
                    start=spec.care_cycle.start_days,
                    end=spec.care_cycle.end_days,
                ),
            )
        )
    return entries


# -- writers ------------------------------------------------------------------------------------


def csv_stream(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, byte_order_mark: bool = True
) -> Iterator[str]:
    """CSV text a few hundred rows at a time (a byte-order mark first, so that spreadsheets
    read UTF-8); every text cell is neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_safe_row(header))
    yield ("\ufeff" if byte_order_mark else "") + _drain(buffer)
    pending = 0
    for row in rows:
        writer.writerow(_safe_row(row))
        pending += 1
        if pending == CSV_FLUSH_ROWS:
            pending = 0
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a CSV file; returns the number of data rows."""
    count = 0

    def counted() -> Iterator[Sequence[Any]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    with path.open("w", encoding="utf-8", newline="") as stream:
        for text in csv_stream(header, counted()):
            stream.write(text)
    return count


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = str(neutralise(value.translate(_ILLEGAL_XML)))
        if text in XLSX_ERROR_CODES:
            cell = WriteOnlyCell(sheet, value=text)
            cell.data_type = "s"
            return cell
        return text
    return value


def write_xlsx(
    path: Path, sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]
) -> dict[str, int]:
    """Write an XLSX workbook with openpyxl's write-only (streaming) writer: one sheet per
    ``(title, header, rows)``; text cells are neutralised and stored as text, never as
    formulas. Returns the number of data rows per sheet."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    counts: dict[str, int] = {}
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title)
        sheet.append([_xlsx_cell(sheet, name) for name in header])
        count = 0
        for row in rows:
            sheet.append([_xlsx_cell(sheet, value) for value in row])
            count += 1
        counts[title] = count
    workbook.save(str(path))
    return counts


# -- FHIR ---------------------------------------------------------------------------------------


def _fhir_answers(spec: InstrumentSpec, stored: Mapping[str, str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for item_id, value in stored.items():
        if item_id not in spec.item_ids:
            continue
        if spec.item(item_id).type == "multiple_choice":
            answers[item_id] = [code for code in value.split(MULTI_SEPARATOR) if code]
        else:
            answers[item_id] = value
    return answers


def fhir_bundle(session: AnySession, pilot: Pilot, options: ExportOptions) -> Iterator[str]:
    """A FHIR R4 ``Bundle`` (``collection``) of the submitted responses as JSON text, one entry
    at a time. Each ``QuestionnaireResponse`` is validated by :func:`response_to_fhir`; its
    ``id`` is a keyed hash of the response, its subject ``Patient/<person_key>`` and its
    ``authored`` time shifted with the person's dates."""
    specs = _Specs(session)
    header = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    opening = json.dumps(header, ensure_ascii=False)[:-1]
    yield opening
    first = True
    pseudonymiser = Pseudonymiser(options.date_shift_days)
    response_key = KeyedHasher(RESPONSE_KEY_PURPOSE)
    for chunk in enrolment_chunks(session, pilot, options):
        people = pseudonymiser.chunk(row.person_id for row in chunk.enrolments)
        responses: dict[int, list[Any]] = {}
        for row in _answer_rows(session, pilot, options, chunk):
            responses.setdefault(row.response_id, []).append(row)
        for response_id in sorted(responses):
            rows = responses[response_id]
            head = rows[0]
            spec = specs(head.instrument_version_id)
            offset = people.offsets[head.person_id]
            dates = specs.date_items[head.instrument_version_id]
            stored = {
                row.item_id: _shift_iso_date(row.value, offset)
                if offset and row.item_id in dates
                else row.value
                for row in rows
            }
            key = response_key(str(response_id))
            authored = head.submitted_at + timedelta(days=offset)
            resource = response_to_fhir(
                spec,
                response_id=key,
                subject_reference=f"Patient/{people.keys[head.person_id]}",
                authored=authored,
                status="completed",
                language=head.language if head.language in spec.languages else spec.languages[0],
                answers=_fhir_answers(spec, stored),
                time_point=head.time_point,
                mode=head.mode,
                proxy=bool(head.proxy),
            )
            entry = {"fullUrl": f"urn:uuid:{uuid.UUID(hex=key[:32])}", "resource": resource}
            yield (', "entry": [' if first else ", ") + json.dumps(entry, ensure_ascii=False)
            first = False
    yield "}" if first else "]}"


def write_text(path: Path, chunks: Iterable[str]) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for text in chunks:
            stream.write(text)


__all__ = [
    "FORMATS",
    "LONG_COLUMNS",
    "MAX_DATE_SHIFT_DAYS",
    "SHAPES",
    "DictionaryEntry",
    "ExportOptions",
    "ExportOptionsError",
    "WideLayout",
    "count_rows",
    "csv_stream",
    "date_offset",
    "dictionary",
    "fhir_bundle",
    "long_header",
    "long_rows",
    "neutralise",
    "parse_options",
    "person_key",
    "wide_layout",
    "wide_rows",
    "write_csv",
    "write_text",
    "write_xlsx",
]
