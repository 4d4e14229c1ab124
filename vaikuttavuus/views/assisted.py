"""Assisted entry: clinicians and pilot leads enter a patient's answers (phone, paper form).

The pages walk the same sections with the same form builder as the patient's link, and reuse
the patient step and review templates inside the staff layout. Forms carry the session CSRF
token; every page view and save is audited with the person it concerns.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.forms.questionnaire import build_section_form, collect_answers, describe_field
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Invitation, Pilot, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import assisted, audit, patient_flow, schedule
from vaikuttavuus.services.definitions import current_instrument
from vaikuttavuus.services.patient_flow import Step
from vaikuttavuus.views import patient as patient_views
from vaikuttavuus.views.common import require_pilot

bp = Blueprint("assisted", __name__, url_prefix="/assisted")

STAFF = (Role.CLINICIAN, Role.PILOT_LEAD)
LAYOUT = "base.html"


def _load(pilot_code: str, invitation_id: int) -> tuple[Pilot, Invitation]:
    pilot = require_pilot(pilot_code)
    invitation = schedule.pilot_invitation(db.session, pilot.id, invitation_id)
    if invitation is None:
        abort(404)
    return pilot, invitation


def _patient_page(pilot: Pilot, invitation: Invitation) -> Response:
    return redirect(
        url_for(
            "clinician.patient",
            pilot_code=pilot.code,
            pseudonym=invitation.enrolment.person.pseudonym,
        )
    )


def _refuse(pilot: Pilot, invitation: Invitation) -> Response | None:
    """Back to the patient's page when answers can no longer be entered."""
    problem = assisted.problem(invitation)
    if problem is None:
        return None
    if problem == "completed":
        flash(_("The questionnaire has already been answered."), "info")
    else:
        flash(_("Answers can no longer be entered for this questionnaire."), "error")
    return _patient_page(pilot, invitation)


def _questionnaire_language(invitation: Invitation) -> str:
    """The language the questions are read in: ``?qlang=`` or the person's preference."""
    languages = current_app.config["LANGUAGES"]
    requested = request.args.get("qlang")
    if requested in languages:
        return str(requested)
    preferred = invitation.enrolment.person.preferred_language
    return preferred if preferred in languages else "fi"


def _answered_how() -> tuple[str, bool]:
    """How the patient's answers reached staff: ``?how=phone|paper`` (default phone) and
    ``?proxy=1`` when someone else answered for the patient."""
    how = request.args.get("how")
    return (how if how in assisted.ASSISTED_MODES else "phone"), request.args.get("proxy") == "1"


def _steps(invitation: Invitation, language: str) -> tuple[list[Any], list[Step]]:
    how, proxy = _answered_how()
    responses = assisted.responses_for(
        db.session, invitation, language, current_user.id, mode=how, proxy=proxy
    )
    return responses, patient_flow.steps_for(responses)


def _audit(action: str, pilot: Pilot, invitation: Invitation, **details: Any) -> None:
    audit.record(
        action,
        object_type="invitation",
        object_id=invitation.id,
        person_id=invitation.enrolment.person_id,
        pilot_code=pilot.code,
        details=details,
    )


def _context(pilot: Pilot, invitation: Invitation, language: str) -> dict[str, Any]:
    how, proxy = _answered_how()
    return {
        "how": how,
        "proxy": proxy,
        "answered": {"how": how, "proxy": "1" if proxy else "0"},
        "page_layout": LAYOUT,
        "pilot": pilot,
        "invitation": invitation,
        "person": invitation.enrolment.person,
        "time_point": invitation.time_point,
        "closes_on": invitation.closes_on,
        "language": language,
        "qlang": language,
    }


@bp.get("/<pilot_code>/<int:invitation_id>/")
@allow(*STAFF)
def start(pilot_code: str, invitation_id: int) -> Response | str:
    pilot, invitation = _load(pilot_code, invitation_id)
    refused = _refuse(pilot, invitation)
    if refused is not None:
        return refused
    language = _questionnaire_language(invitation)
    staff_language = current_language()
    instruments = [
        current_instrument(db.session, link.instrument_code).label(staff_language)
        for link in invitation.time_point.instruments
    ]
    _audit("view_assisted_entry", pilot, invitation, page="start")
    return render_template(
        "assisted/start.html",
        **_context(pilot, invitation, language),
        instruments=instruments,
        languages=current_app.config["LANGUAGES"],
    )


@bp.route("/<pilot_code>/<int:invitation_id>/<int:number>", methods=["GET", "POST"])
@allow(*STAFF)
def step(pilot_code: str, invitation_id: int, number: int) -> Response:
    pilot, invitation = _load(pilot_code, invitation_id)
    refused = _refuse(pilot, invitation)
    if refused is not None:
        return refused
    language = _questionnaire_language(invitation)
    responses, steps = _steps(invitation, language)
    how, proxy = _answered_how()
    here: dict[str, Any] = {  # url_for's values
        "pilot_code": pilot.code,
        "invitation_id": invitation.id,
        "qlang": language,
        "how": how,
        "proxy": "1" if proxy else "0",
    }
    if not 1 <= number <= len(steps):
        return redirect(url_for("assisted.start", **here))
    current = steps[number - 1]
    response = next(r for r in responses if r.id == current.response_id)
    stored = patient_flow.stored_answers(db.session, [response.id])[response.id]
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = build_section_form(current.spec, current.section, language, formdata=request.form)
        direction = request.form.get("direction", "next")
        on_page = {item.id for item in current.section.items}
        others = {k: v for k, v in stored.items() if k not in on_page}
        values, errors = collect_answers(form, others, enforce_required=direction == "next")
        patient_flow.save_section(
            db.session,
            response,
            current.section,
            {k: v for k, v in values.items() if k not in errors},
            language,
        )
        assisted.mark_assisted(db.session, [response], current_user.id, mode=how, proxy=proxy)
        _audit(
            "assisted_entry_save",
            pilot,
            invitation,
            response_id=response.id,
            instrument=current.instrument_code,
            page=number,
            problems=len(errors),
            mode=how,
            proxy=proxy,
        )
        if not errors or direction == "back":
            if direction == "back":
                if number <= 1:
                    return redirect(url_for("assisted.start", **here))
                return redirect(url_for("assisted.step", number=number - 1, **here))
            if direction == "review" or number == len(steps):
                return redirect(url_for("assisted.review", **here))
            return redirect(url_for("assisted.step", number=number + 1, **here))
    else:
        form = build_section_form(current.spec, current.section, language, stored=stored)
        _audit("view_assisted_entry", pilot, invitation, page=number)
    page = make_response(
        render_template(
            "assisted/step.html",
            **_context(pilot, invitation, language),
            form=form,
            current=current,
            steps=steps,
            errors=errors,
            describe_field=describe_field,
            enable_rules=patient_views._enable_rules(current),
            hidden_items=patient_views._hidden_by_other_pages(current, stored),
        ),
        422 if errors else 200,
    )
    page.commit_on_error = True  # type: ignore[attr-defined]  # keep the valid answers
    return page


@bp.get("/<pilot_code>/<int:invitation_id>/review")
@allow(*STAFF)
def review(pilot_code: str, invitation_id: int) -> Response | str:
    pilot, invitation = _load(pilot_code, invitation_id)
    refused = _refuse(pilot, invitation)
    if refused is not None:
        return refused
    language = _questionnaire_language(invitation)
    responses, steps = _steps(invitation, language)
    answers = patient_flow.stored_answers(db.session, [r.id for r in responses])
    pages = assisted.review_pages(steps, answers, language)
    _audit("view_assisted_entry", pilot, invitation, page="review")
    return render_template(
        "assisted/review.html",
        **_context(pilot, invitation, language),
        pages=pages,
        complete=not any(p["incomplete"] for p in pages),
    )


@bp.post("/<pilot_code>/<int:invitation_id>/submit")
@allow(*STAFF)
def submit(pilot_code: str, invitation_id: int) -> Response:
    pilot, invitation = _load(pilot_code, invitation_id)
    if invitation.status == "completed":
        # A double click or a retry: the answers are already stored.
        flash(_("The questionnaire has already been answered."), "info")
        return _patient_page(pilot, invitation)
    refused = _refuse(pilot, invitation)
    if refused is not None:
        return refused
    language = _questionnaire_language(invitation)
    responses, steps = _steps(invitation, language)
    how, proxy = _answered_how()
    assisted.mark_assisted(db.session, responses, current_user.id, mode=how, proxy=proxy)
    result = patient_flow.submit(db.session, invitation, responses, steps)
    if not result.submitted:
        return redirect(
            url_for(
                "assisted.step",
                pilot_code=pilot.code,
                invitation_id=invitation.id,
                number=result.first_incomplete_step,
                qlang=language,
                how=how,
                proxy="1" if proxy else "0",
                incomplete=1,
            )
        )
    _audit(
        "assisted_entry_submit",
        pilot,
        invitation,
        responses=[r.id for r in responses],
        language=language,
        mode=how,
        proxy=proxy,
    )
    flash(_("The answers were saved as entered by staff."), "info")
    return _patient_page(pilot, invitation)
