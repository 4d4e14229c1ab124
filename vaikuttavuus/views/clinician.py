"""Clinician pages: the pilot's patients and one patient's outcomes against the cohort."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Arm, Enrolment, Invitation, Person, Procedure, Role, TimePoint
from vaikuttavuus.plotting import Band, trajectory_chart
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.definitions import pilot_spec
from vaikuttavuus.services.patient_outcomes import ScoreSeries, patient_series
from vaikuttavuus.views.common import require_pilot, visible_pilots

bp = Blueprint("clinician", __name__, url_prefix="/clinician")

CLINICAL_ROLES = (Role.CLINICIAN, Role.PILOT_LEAD)
PAGE_SIZE = 50


@bp.get("/")
@allow(*CLINICAL_ROLES)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("clinician.patients", pilot_code=pilots[0].code))
    return render_template("clinician/index.html", pilots=pilots)


@bp.get("/<pilot_code>/")
@allow(*CLINICAL_ROLES)
def patients(pilot_code: str) -> str:
    pilot = require_pilot(pilot_code)
    query = (request.args.get("q") or "").strip()[:80]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    statement = (
        select(Enrolment, Person, Arm)
        .join(Person, Enrolment.person_id == Person.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .where(Enrolment.pilot_id == pilot.id, Person.erased_at.is_(None))
    )
    if query:
        pattern = f"%{query.lower()}%"
        statement = statement.where(
            or_(
                func.lower(Person.pseudonym).like(pattern),
                func.lower(Person.last_name).like(pattern),
                func.lower(Person.first_name).like(pattern),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = db.session.execute(
        statement.order_by(Enrolment.index_date.desc(), Person.pseudonym)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    pending = _open_invitations([row.Enrolment.id for row in rows])
    audit.record(
        "view_patient_list",
        object_type="pilot",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={"query": query, "page": page, "rows": len(rows)},
    )
    return render_template(
        "clinician/patients.html",
        pilot=pilot,
        rows=rows,
        pending=pending,
        query=query,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total,
    )


def _open_invitations(enrolment_ids: list[int]) -> dict[int, str]:
    if not enrolment_ids:
        return {}
    rows = db.session.execute(
        select(Invitation.enrolment_id, TimePoint.code)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id.in_(enrolment_ids), Invitation.status == "open")
    ).all()
    return {int(row[0]): str(row[1]) for row in rows}


@bp.get("/<pilot_code>/<pseudonym>")
@allow(*CLINICAL_ROLES)
def patient(pilot_code: str, pseudonym: str) -> str:
    pilot = require_pilot(pilot_code)
    enrolment = db.session.scalar(
        select(Enrolment)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Enrolment.pilot_id == pilot.id, Person.pseudonym == pseudonym)
    )
    if enrolment is None or enrolment.person.erased_at is not None:
        abort(404)
    language = current_language()
    spec = pilot_spec(pilot)
    primary = spec.primary_outcome
    series = patient_series(db.session, enrolment, language, primary.instrument)
    charts = [_chart(s, language) for s in series if s.has_patient_values or s.rows]
    procedures = db.session.scalars(
        select(Procedure).where(Procedure.enrolment_id == enrolment.id)
    ).all()
    invitations = db.session.scalars(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id)
        .order_by(TimePoint.ordinal)
    ).all()
    audit.record(
        "view_patient",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
    )
    return render_template(
        "clinician/patient.html",
        pilot=pilot,
        enrolment=enrolment,
        person=enrolment.person,
        series=series,
        charts=charts,
        procedures=procedures,
        invitations=invitations,
        primary=primary,
    )


def _chart(series: ScoreSeries, language: str) -> object:
    patient_text = ", ".join(
        f"{row.label}: {'–' if row.patient is None else f'{row.patient:g}'}" for row in series.rows
    )
    alt = _(
        "%(score)s of the patient over time compared with the cohort median. %(values)s",
        score=series.score_label,
        values=patient_text,
    )
    return trajectory_chart(
        time_labels=[row.label for row in series.rows],
        patient=[row.patient for row in series.rows],
        median=[row.median for row in series.rows],
        q1=[row.q1 for row in series.rows],
        q3=[row.q3 for row in series.rows],
        y_label=series.score_label,
        y_range=series.value_range,
        bands=[Band(low, high, label) for low, high, label in series.bands],
        important_change_line=series.important_change_line,
        labels={
            "patient": _("Patient"),
            "median": _("Cohort median (same arm)"),
            "iqr": _("Cohort interquartile range"),
            "important_change": _("Clinically important improvement"),
        },
        alt=alt,
    )
