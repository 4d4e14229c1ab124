"""Clinical measurements entered in a form: the same checks as an import (one row through the
``measurements`` schema of :mod:`vaikuttavuus.domain.imports`), and corrections that keep the
history — the corrected row stays, marked superseded, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.identity import mask_identity_codes
from vaikuttavuus.domain.imports import RowError, table_from_rows, validate
from vaikuttavuus.domain.specs import MeasureSpec
from vaikuttavuus.models import ClinicalMeasurement, Enrolment, User, utcnow
from vaikuttavuus.services.imports import import_context

FORM_COLUMNS = ("pseudonym", "measure", "value", "unit", "measured_on", "time_point")
MAX_REASON = 200


class MeasurementError(ValueError):
    """The entry did not pass; ``errors`` name the field (``column``) and the problem."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(error.code for error in errors))
        self.errors = errors


@dataclass(frozen=True)
class MeasurementEntry:
    measure: str
    value: str
    measured_on: str
    time_point: str = ""


@dataclass(frozen=True)
class HistoryRow:
    """One stored value; ``current`` is false for a value a later correction replaced."""

    measurement: ClinicalMeasurement
    recorded_by: str | None
    current: bool


def pilot_measures(session: AnySession, enrolment: Enrolment) -> tuple[MeasureSpec, ...]:
    """The catalogue's measures that apply to the enrolment's pilot."""
    return import_context(session, enrolment.pilot, "measurements").pilot_measures()


def history(session: AnySession, enrolment: Enrolment) -> list[HistoryRow]:
    """Every value of the enrolment, newest measurement date first; corrections follow the
    value they replaced."""
    rows = session.execute(
        select(ClinicalMeasurement, User.username)
        .outerjoin(User, User.id == ClinicalMeasurement.recorded_by_user_id)
        .where(ClinicalMeasurement.enrolment_id == enrolment.id)
        .order_by(
            ClinicalMeasurement.measure_code,
            ClinicalMeasurement.measured_on.desc(),
            ClinicalMeasurement.recorded_at.desc(),
            ClinicalMeasurement.id.desc(),
        )
    ).all()
    return [
        HistoryRow(measurement, username, measurement.superseded_by_id is None)
        for measurement, username in rows
    ]


def _checked(
    session: AnySession,
    enrolment: Enrolment,
    entry: MeasurementEntry,
    *,
    skip_stored: bool = False,
    today: date | None = None,
) -> dict[str, Any]:
    """The entry as a validated row (``value_num``, ``value_text``, ``unit``, ``measured_on``,
    ``row_hash``) or :class:`MeasurementError`."""
    context = import_context(session, enrolment.pilot, "measurements", today)
    if skip_stored:
        context = _without_stored(context)
    measures = {m.id: m for m in context.pilot_measures()}
    spec = measures.get(entry.measure.strip())
    unit = spec.unit if spec is not None and spec.unit else ""
    table = table_from_rows(
        FORM_COLUMNS,
        [
            [
                enrolment.person.pseudonym,
                entry.measure,
                entry.value,
                unit,
                entry.measured_on,
                entry.time_point,
            ]
        ],
    )
    result = validate("measurements", table, context)
    if not result.ok:
        raise MeasurementError(list(result.errors))
    if result.frame.empty:  # the very same value is stored already
        raise MeasurementError([RowError(2, None, None, "duplicate", {"stored": True})])
    row = result.frame.iloc[0]
    return {
        "measure_code": str(row["measure"]),
        "value_num": None if row["value_num"] != row["value_num"] else float(row["value_num"]),
        "value_text": row["value_text"],
        "unit": row["unit"],
        "measured_on": row["measured_on"].date(),
        "row_hash": str(row["row_hash"]),
    }


def _without_stored(context: Any) -> Any:
    from dataclasses import replace

    return replace(context, stored_row_hashes=lambda _hashes: ())


def add_measurement(
    session: AnySession,
    enrolment: Enrolment,
    entry: MeasurementEntry,
    user: User | None,
    today: date | None = None,
) -> ClinicalMeasurement:
    """Check and store one value (``source='form'``)."""
    values = _checked(session, enrolment, entry, today=today)
    measurement = ClinicalMeasurement(
        enrolment_id=enrolment.id,
        source="form",
        recorded_by_user_id=user.id if user is not None else None,
        recorded_at=utcnow(),
        **values,
    )
    session.add(measurement)
    session.flush()
    return measurement


def correct_measurement(
    session: AnySession,
    measurement: ClinicalMeasurement,
    *,
    value: str,
    measured_on: str,
    reason: str,
    user: User | None,
    today: date | None = None,
) -> ClinicalMeasurement:
    """Replace a current value by a corrected one: a new row, the old one marked superseded
    (when, by which row, why). The measure itself cannot change. An identity code typed into
    the reason is stored masked (codes are never stored in clear)."""
    errors: list[RowError] = []
    reason = mask_identity_codes(reason.strip())
    if not reason:
        errors.append(RowError(2, "reason", None, "missing"))
    elif len(reason) > MAX_REASON:
        errors.append(RowError(2, "reason", None, "too_long", {"max": MAX_REASON}))
    if measurement.superseded_by_id is not None:
        errors.append(RowError(2, None, None, "conflict", {"reason": "superseded"}))
    enrolment = session.get(Enrolment, measurement.enrolment_id)
    assert enrolment is not None
    entry = MeasurementEntry(measurement.measure_code, value, measured_on)
    try:
        values = _checked(session, enrolment, entry, skip_stored=True, today=today)
    except MeasurementError as error:
        errors += error.errors
        values = {}
    if values and _same(measurement, values):
        errors.append(RowError(2, "value", None, "conflict", {"reason": "unchanged"}))
    if errors:
        raise MeasurementError(errors)
    corrected = ClinicalMeasurement(
        enrolment_id=measurement.enrolment_id,
        source="form",
        recorded_by_user_id=user.id if user is not None else None,
        recorded_at=utcnow(),
        **values,
    )
    session.add(corrected)
    session.flush()
    measurement.superseded_by_id = corrected.id
    measurement.superseded_at = utcnow()
    measurement.correction_reason = reason
    session.flush()
    return corrected


def _same(measurement: ClinicalMeasurement, values: dict[str, Any]) -> bool:
    return (
        measurement.value_num == values["value_num"]
        and measurement.value_text == values["value_text"]
        and measurement.measured_on == values["measured_on"]
    )


def display_value(measurement: ClinicalMeasurement, spec: MeasureSpec | None) -> str | float:
    """A grade as its text, yes/no as the word, a number as a number (the template formats)."""
    if spec is not None and spec.type == "yes_no" and measurement.value_num is not None:
        return "yes" if measurement.value_num >= 0.5 else "no"
    if measurement.value_text is not None:
        return measurement.value_text
    if measurement.value_num is None:
        return ""
    return measurement.value_num
