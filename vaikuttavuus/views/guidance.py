"""Client guidance (asiakasohjaus): which services are associated with less loneliness among
clients like this one. For clinicians and pilot leads of the pilot, from a profile form or from
a client's page with the client's own profile filled in."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Enrolment, Person, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.guidance import clean_profile, client_profile_of, guidance_view
from vaikuttavuus.views.common import require_pilot

bp = Blueprint("guidance", __name__, url_prefix="/guidance")

GUIDANCE_ROLES = (Role.CLINICIAN, Role.PILOT_LEAD)


@bp.get("/<pilot_code>/")
@allow(*GUIDANCE_ROLES)
def profile(pilot_code: str) -> str:
    """The differences for the profile chosen in the form (``?band=…&insecure=…``)."""
    pilot = require_pilot(pilot_code)
    analysis = CohortAnalysis(db.session, pilot)
    chosen = clean_profile(analysis, dict(request.args))
    view = guidance_view(analysis, Labels(analysis, current_language()), chosen)
    audit.record(
        "view_client_guidance",
        object_type="pilot",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={"profile": chosen},
    )
    return render_template("guidance/profile.html", pilot=pilot, view=view, person=None)


@bp.get("/<pilot_code>/client/<pseudonym>")
@allow(*GUIDANCE_ROLES)
def client(pilot_code: str, pseudonym: str) -> str:
    """The same for one client's own profile (baseline answers, living alone, age)."""
    pilot = require_pilot(pilot_code)
    enrolment = db.session.scalar(
        select(Enrolment)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Enrolment.pilot_id == pilot.id, Person.pseudonym == pseudonym)
    )
    if enrolment is None or enrolment.person.erased_at is not None:
        abort(404)
    analysis = CohortAnalysis(db.session, pilot)
    chosen = client_profile_of(analysis, enrolment.id)
    view = guidance_view(analysis, Labels(analysis, current_language()), chosen)
    audit.record(
        "view_client_guidance",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
    )
    return render_template(
        "guidance/profile.html", pilot=pilot, view=view, person=enrolment.person
    )
