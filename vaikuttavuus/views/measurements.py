"""Clinician pages: a patient's clinical measurements with their history, a form to add one and
a form to correct one (the corrected value stays visible, with the reason)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import Field, SelectField, StringField, SubmitField, TextAreaField

from vaikuttavuus.domain.specs import MeasureSpec
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import ClinicalMeasurement, Enrolment, Person, Pilot, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.imports import describe
from vaikuttavuus.services.measurements import (
    MAX_REASON,
    MeasurementEntry,
    MeasurementError,
    add_measurement,
    correct_measurement,
    display_value,
    history,
    pilot_measures,
)
from vaikuttavuus.views.common import require_pilot

bp = Blueprint("measurements", __name__, url_prefix="/measurements")

CLINICAL_ROLES = (Role.CLINICIAN, Role.PILOT_LEAD)
SOURCE_LABELS = {"form": _l("entered"), "import": _l("imported")}
YES_NO = {"yes": _l("yes"), "no": _l("no")}


class MeasurementForm(FlaskForm):
    measure = SelectField(_l("Measure"), choices=[])
    value = StringField(_l("Value"))
    measured_on = StringField(_l("Date of the measurement"), render_kw={"type": "date"})
    time_point = SelectField(_l("Time point (optional)"), choices=[])
    submit = SubmitField(_l("Save the measurement"))


class CorrectionForm(FlaskForm):
    value = StringField(_l("Corrected value"))
    measured_on = StringField(_l("Date of the measurement"), render_kw={"type": "date"})
    reason = TextAreaField(_l("Reason for the correction"), render_kw={"maxlength": MAX_REASON})
    submit = SubmitField(_l("Save the correction"))


def _enrolment(pilot: Pilot, pseudonym: str) -> Enrolment:
    enrolment = db.session.scalar(
        select(Enrolment)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Enrolment.pilot_id == pilot.id, Person.pseudonym == pseudonym)
    )
    if enrolment is None or enrolment.person.erased_at is not None:
        abort(404)
    return enrolment


def _measure_label(spec: MeasureSpec, language: str) -> str:
    name = spec.name.get(language)
    return f"{name} ({spec.unit})" if spec.unit else name


def _shown(measurement: ClinicalMeasurement, spec: MeasureSpec | None) -> str:
    value = display_value(measurement, spec)
    if isinstance(value, float):
        return format_decimal(value, format="#,##0.###")
    return str(YES_NO.get(value, value))


def _hint(spec: MeasureSpec, language: str) -> str:
    if spec.type in ("decimal", "integer"):
        return _(
            "%(low)s–%(high)s %(unit)s",
            low=format_decimal(spec.min or 0, format="#,##0.###"),
            high=format_decimal(spec.max or 0, format="#,##0.###"),
            unit=spec.unit or "",
        )
    if spec.type == "grade":
        return ", ".join(spec.grades)
    return _("yes or no")


def _put_errors(form: FlaskForm, errors: list[Any], fields: dict[str, Field]) -> list[str]:
    """Attach each error's message to its field; those without one are returned."""
    general = []
    for error in errors:
        field = fields.get(error.column or "")
        if field is None:
            general.append(describe(error))
        else:
            field.errors = [*field.errors, describe(error)]
    return general


def _page(html: str, failed: bool) -> Response | str:
    """A form page; after a refused entry with status 422, keeping the page's audit event."""
    if not failed:
        return html
    response = make_response(html, 422)
    response.commit_on_error = True  # type: ignore[attr-defined]
    return response


@bp.route("/<pilot_code>/<pseudonym>", methods=["GET", "POST"])
@allow(*CLINICAL_ROLES)
def patient(pilot_code: str, pseudonym: str) -> Response | str:
    pilot = require_pilot(pilot_code)
    enrolment = _enrolment(pilot, pseudonym)
    language = current_language()
    measures = {m.id: m for m in pilot_measures(db.session, enrolment)}
    form = MeasurementForm()
    form.measure.choices = [(m.id, _measure_label(m, language)) for m in measures.values()]
    form.time_point.choices = [("", "–")] + [
        (tp.code, tp.label(language)) for tp in pilot.time_points
    ]
    general: list[str] = []
    if form.validate_on_submit():
        entry = MeasurementEntry(
            measure=form.measure.data or "",
            value=form.value.data or "",
            measured_on=form.measured_on.data or "",
            time_point=form.time_point.data or "",
        )
        try:
            measurement = add_measurement(
                db.session, enrolment, entry, current_user._get_current_object()
            )
        except MeasurementError as error:
            general = _put_errors(
                form,
                error.errors,
                {
                    "measure": form.measure,
                    "value": form.value,
                    "unit": form.value,
                    "measured_on": form.measured_on,
                    "time_point": form.time_point,
                },
            )
        else:
            audit.record(
                "add_measurement",
                object_type="clinical_measurement",
                object_id=measurement.id,
                person_id=enrolment.person_id,
                pilot_code=pilot.code,
                details={"measure": measurement.measure_code},
            )
            flash(_("The measurement was saved."), "info")
            return redirect(
                url_for("measurements.patient", pilot_code=pilot.code, pseudonym=pseudonym)
            )

    audit.record(
        "view_measurements",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
    )
    rows = history(db.session, enrolment)
    page = render_template(
        "measurements/patient.html",
        pilot=pilot,
        enrolment=enrolment,
        person=enrolment.person,
        form=form,
        general_errors=general,
        rows=[
            {
                "row": row,
                "label": _measure_label(measures[row.measurement.measure_code], language)
                if row.measurement.measure_code in measures
                else row.measurement.measure_code,
                "value": _shown(row.measurement, measures.get(row.measurement.measure_code)),
            }
            for row in rows
        ],
        hints=[(_measure_label(m, language), _hint(m, language)) for m in measures.values()],
        source_labels=SOURCE_LABELS,
    )
    return _page(page, form.is_submitted())


@bp.route("/<pilot_code>/<pseudonym>/<int:measurement_id>/correct", methods=["GET", "POST"])
@allow(*CLINICAL_ROLES)
def correct(pilot_code: str, pseudonym: str, measurement_id: int) -> Response | str:
    pilot = require_pilot(pilot_code)
    enrolment = _enrolment(pilot, pseudonym)
    measurement = db.session.get(ClinicalMeasurement, measurement_id)
    if measurement is None or measurement.enrolment_id != enrolment.id:
        abort(404)
    language = current_language()
    measures = {m.id: m for m in pilot_measures(db.session, enrolment)}
    spec = measures.get(measurement.measure_code)
    back = url_for("measurements.patient", pilot_code=pilot.code, pseudonym=pseudonym)
    if measurement.superseded_by_id is not None:
        flash(
            _("This value has already been corrected; correct the newest value instead."), "error"
        )
        return redirect(back)
    form = CorrectionForm()
    if not form.is_submitted():
        form.value.data = _shown(measurement, spec)
        form.measured_on.data = measurement.measured_on.isoformat()
    general: list[str] = []
    if form.validate_on_submit():
        try:
            corrected = correct_measurement(
                db.session,
                measurement,
                value=form.value.data or "",
                measured_on=form.measured_on.data or "",
                reason=form.reason.data or "",
                user=current_user._get_current_object(),
            )
        except MeasurementError as error:
            general = _put_errors(
                form,
                error.errors,
                {
                    "value": form.value,
                    "unit": form.value,
                    "measured_on": form.measured_on,
                    "reason": form.reason,
                },
            )
        else:
            audit.record(
                "correct_measurement",
                object_type="clinical_measurement",
                object_id=corrected.id,
                person_id=enrolment.person_id,
                pilot_code=pilot.code,
                # The reason is free text: it stays on the corrected row (shown in the history,
                # cleared by erasure), never in the append-only audit trail.
                details={"replaces": measurement.id, "reason_given": True},
            )
            flash(_("The correction was saved; the earlier value is kept in the history."), "info")
            return redirect(back)
    audit.record(
        "view_measurements",
        object_type="clinical_measurement",
        object_id=measurement.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
        details={"page": "correct"},
    )
    page = render_template(
        "measurements/correct.html",
        pilot=pilot,
        person=enrolment.person,
        measurement=measurement,
        label=_measure_label(spec, language) if spec else measurement.measure_code,
        hint=_hint(spec, language) if spec else "",
        value=_shown(measurement, spec),
        form=form,
        general_errors=general,
        back=back,
    )
    return _page(page, form.is_submitted())
