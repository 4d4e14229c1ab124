"""Data-subject requests, handled by a pilot lead (for their pilots) or an administrator:
the person's own data (GDPR Art. 15) as a PDF and a JSON file, withdrawal and erasure.

The own-data downloads hold the person's clinical data, so only the pilot leads of the
person's pilots make them (the data protection contact works through them); administrators
see no clinical data and may withdraw and erase (``docs/privacy.md``).

Every page and download is audited; withdrawal and erasure need the person's pseudonym typed
as confirmation and are posted with the CSRF token. Reasons typed into the forms are stored
with the enrolment (where erasure reaches them), never in the audit trail.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, Optional

from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Role
from vaikuttavuus.pdf import render_pdf
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit, privacy
from vaikuttavuus.services.privacy import Scope

bp = Blueprint("privacy", __name__, url_prefix="/privacy")

PRIVACY_ROLES = (Role.PILOT_LEAD, Role.ADMIN)
# The person's own data (clinical content): the pilot leads of the person's pilots only.
ACCESS_EXPORT_ROLES = (Role.PILOT_LEAD,)


class ConfirmRequestForm(FlaskForm):
    reason = StringField(
        _l("Reason or reference (optional)"), validators=[Optional(), Length(max=200)]
    )
    confirm = StringField(
        _l("Type the pseudonym to confirm"), validators=[DataRequired(), Length(max=40)]
    )


class ErasureForm(ConfirmRequestForm):
    delete_answers = BooleanField(_l("Also delete the answers"))


def _scope(pseudonym: str) -> Scope:
    """The person, if the current user may act for them (404 otherwise: not even existence
    is revealed to a pilot lead of another pilot)."""
    scope = privacy.scope_for(db.session, current_user, pseudonym[:40])
    if scope is None:
        abort(404)
    return scope


def _confirmed(form: ConfirmRequestForm, scope: Scope) -> bool:
    if not form.validate_on_submit():
        return False
    if (form.confirm.data or "").strip() != scope.person.pseudonym:
        form.confirm.errors = [
            *form.confirm.errors,
            _(
                "Type the pseudonym %(pseudonym)s exactly as shown.",
                pseudonym=scope.person.pseudonym,
            ),
        ]
        return False
    return True


def _audit(action: str, scope: Scope, **details: Any) -> None:
    audit.record(
        action,
        object_type="person",
        object_id=scope.person.pseudonym,
        person_id=scope.person.id,
        pilot_code=scope.pilot_codes[0] if len(scope.pilot_codes) == 1 else None,
        details={"pilots": list(scope.pilot_codes), **details},
    )


@bp.get("/<pseudonym>")
@allow(*PRIVACY_ROLES)
def person(pseudonym: str) -> str:
    scope = _scope(pseudonym)
    _audit("view_privacy", scope)
    return render_template(
        "privacy/person.html",
        scope=scope,
        person=scope.person,
        may_export=current_user.role in ACCESS_EXPORT_ROLES,
        # administrators see no clinical data: not even the arm or the index date
        show_clinical=current_user.role != Role.ADMIN,
    )


def _access_data(scope: Scope, fmt: str) -> dict[str, Any]:
    with read_snapshot():  # everything stored about the person, from one moment
        data = privacy.subject_access(db.session, scope, current_language())
    _audit("export_subject_access", scope, format=fmt)
    return data


@bp.get("/<pseudonym>/access.json")
@allow(*ACCESS_EXPORT_ROLES)
def access_json(pseudonym: str) -> Response:
    scope = _scope(pseudonym)
    data = _access_data(scope, "json")
    response = make_response(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
    response.mimetype = "application/json"
    filename = f"{scope.person.pseudonym}-own-data-{county_today().isoformat()}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<pseudonym>/access.pdf")
@allow(*ACCESS_EXPORT_ROLES)
def access_pdf(pseudonym: str) -> Response:
    scope = _scope(pseudonym)
    language = current_language()
    data = _access_data(scope, "pdf")
    pdf = render_pdf("subject_access.html", language, data=data, person=data["person"])
    response = make_response(pdf)
    response.mimetype = "application/pdf"
    filename = f"{scope.person.pseudonym}-own-data-{county_today().isoformat()}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.route("/<pseudonym>/withdraw/<pilot_code>", methods=["GET", "POST"])
@allow(*PRIVACY_ROLES)
def withdraw(pseudonym: str, pilot_code: str) -> Response | str:
    scope = _scope(pseudonym)
    enrolment = scope.enrolment(pilot_code)
    if enrolment is None:
        abort(404)
    form = ConfirmRequestForm()
    if enrolment.status == "withdrawn":
        flash(_("The person has already withdrawn from this pilot."), "info")
        return redirect(url_for("privacy.person", pseudonym=scope.person.pseudonym))
    if _confirmed(form, scope):
        outcome = privacy.withdraw(db.session, enrolment, reason=form.reason.data)
        audit.record(
            "withdraw_enrolment",
            object_type="enrolment",
            object_id=enrolment.id,
            person_id=scope.person.id,
            pilot_code=pilot_code,
            details={**outcome.as_dict(), "reason_given": bool((form.reason.data or "").strip())},
        )
        flash(
            _(
                "Withdrawn from the pilot: %(invitations)s questionnaires cancelled. "
                "Answers already sent stay in the statistics.",
                invitations=outcome.invitations_cancelled,
            ),
            "info",
        )
        return redirect(url_for("privacy.person", pseudonym=scope.person.pseudonym))
    _audit("view_privacy", scope, page="withdraw")
    return render_template(
        "privacy/withdraw.html", scope=scope, person=scope.person, enrolment=enrolment, form=form
    )


@bp.route("/<pseudonym>/erase", methods=["GET", "POST"])
@allow(*PRIVACY_ROLES)
def erase(pseudonym: str) -> Response | str:
    scope = _scope(pseudonym)
    if not scope.complete:
        # The person is also in a pilot this user does not lead: only an administrator sees
        # (and may erase) the whole.
        abort(403)
    form = ErasureForm()
    if scope.person.erased_at is not None:
        flash(_("The person's identifying data have already been erased."), "info")
        return redirect(url_for("privacy.person", pseudonym=scope.person.pseudonym))
    if _confirmed(form, scope):
        outcome = privacy.erase(
            db.session,
            scope.person,
            delete_answers=bool(form.delete_answers.data),
            reason=form.reason.data,
        )
        _audit("erase_person", scope, **outcome.as_dict())  # reason_given, never the text
        flash(_("The person's identifying data have been erased."), "info")
        return redirect(url_for("privacy.person", pseudonym=scope.person.pseudonym))
    _audit("view_privacy", scope, page="erase")
    return render_template("privacy/erase.html", scope=scope, person=scope.person, form=form)
