"""Clinician pages: the pilot's patients, one patient's outcomes against the cohort (with
alerts, clinical measures, procedures and PREM answers) and the patient's one-page PDF."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response

from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import LIKE_ESCAPE, contains_pattern, read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Arm, Enrolment, Invitation, Person, Pilot, Role, TimePoint
from vaikuttavuus.security.access import PUBLIC, allow, declared_access
from vaikuttavuus.services import audit
from vaikuttavuus.services.definitions import pilot_spec
from vaikuttavuus.services.guidance import services_chart
from vaikuttavuus.services.patient_outcomes import patient_overview
from vaikuttavuus.services.patient_summary import (
    SUMMARY_LANGUAGES,
    alert_texts,
    cohort_text,
    measure_text,
    score_text,
    series_chart,
    summary_language,
    summary_pdf,
)
from vaikuttavuus.views.common import require_pilot, visible_pilots
from vaikuttavuus.views.paging import page_number

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
    page = page_number()
    statement = (
        select(Enrolment, Person, Arm)
        .join(Person, Enrolment.person_id == Person.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .where(Enrolment.pilot_id == pilot.id, Person.erased_at.is_(None))
    )
    if query:
        pattern = contains_pattern(query.lower())
        statement = statement.where(
            or_(
                func.lower(Person.pseudonym).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Person.last_name).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Person.first_name).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = db.session.execute(
        statement.order_by(Enrolment.index_date.desc(), Person.pseudonym)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    pending = _open_invitations([row.Enrolment.id for row in rows])
    # That a search was made and how it went, never what was typed: a name or an identity
    # code typed into the search box must not reach the append-only audit trail.
    search = {"search": True, "query_length": len(query), "matches": total} if query else {}
    audit.record(
        "view_patient_list",
        object_type="pilot",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={**search, "page": page, "rows": len(rows)},
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
    """The open questionnaire of each enrolment, named in the user's language."""
    if not enrolment_ids:
        return {}
    language = current_language()
    rows = db.session.execute(
        select(Invitation.enrolment_id, TimePoint)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id.in_(enrolment_ids), Invitation.status == "open")
        .order_by(TimePoint.ordinal)
    ).all()
    return {int(row[0]): row[1].label(language) for row in rows}


def _enrolment(pilot: Pilot, pseudonym: str) -> Enrolment:
    enrolment = db.session.scalar(
        select(Enrolment)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Enrolment.pilot_id == pilot.id, Person.pseudonym == pseudonym)
    )
    if enrolment is None or enrolment.person.erased_at is not None:
        abort(404)
    return enrolment


def _links(pilot: Pilot, pseudonym: str) -> dict[str, str]:
    """Links to the other pages about this patient that exist and the user may open."""
    views = current_app.view_functions
    links = {}
    wanted = {"measurements": "measurements.patient", "costs": "costs.patient"}
    for name, endpoint in wanted.items():
        access = declared_access(current_app, endpoint) if endpoint in views else None
        if access and access != PUBLIC and current_user.role in access:
            links[name] = url_for(endpoint, pilot_code=pilot.code, pseudonym=pseudonym)
    return links


@bp.get("/<pilot_code>/<pseudonym>")
@allow(*CLINICAL_ROLES)
def patient(pilot_code: str, pseudonym: str) -> str:
    pilot = require_pilot(pilot_code)
    enrolment = _enrolment(pilot, pseudonym)
    with read_snapshot() as snapshot:  # the patient and the cohort from one moment of the data
        overview = patient_overview(db.session, enrolment, current_language(), county_today())
        charts = {
            (s.instrument_code, s.score_id): series_chart(s)
            for s in overview.series
            if s.has_patient_values
        }
        html = render_template(
            "clinician/patient.html",
            pilot=pilot,
            enrolment=enrolment,
            person=enrolment.person,
            overview=overview,
            charts=charts,
            services_chart=services_chart(
                overview, pilot_spec(pilot), enrolment.index_date, county_today()
            ),
            alerts=alert_texts(overview.alerts),
            links=_links(pilot, pseudonym),
            summary_languages=SUMMARY_LANGUAGES,
            patient_language=summary_language(enrolment),
            score_text=score_text,
            cohort_text=cohort_text,
            measure_text=measure_text,
            snapshot_time=snapshot.taken_at,
        )
    audit.record(
        "view_patient",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
    )
    return html


@bp.get("/<pilot_code>/<pseudonym>/summary.pdf")
@allow(*CLINICAL_ROLES)
def patient_summary(pilot_code: str, pseudonym: str) -> Response:
    """The patient's one-page summary as a PDF, in the patient's language unless
    ``?lang_pdf=`` asks for another; the export is audited."""
    pilot = require_pilot(pilot_code)
    enrolment = _enrolment(pilot, pseudonym)
    language = summary_language(enrolment, request.args.get("lang_pdf"))
    pdf = summary_pdf(db.session, enrolment, language, county_today())  # in one read snapshot
    audit.record(
        "export_patient_summary",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
        details={"format": "pdf", "language": language},
    )
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    filename = f"{pilot.code}-{pseudonym}-summary-{county_today().isoformat()}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
