"""Pilot-lead pages: a pilot's invitations and their messages; resend, cancel, extend; letters."""

from __future__ import annotations

from datetime import UTC, date, datetime

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
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.forms.invitations import (
    CHANNEL_LABELS,
    CancelForm,
    ExtendForm,
    LetterBatchForm,
    ResendForm,
    RestoreForm,
)
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Invitation, Pilot, Role
from vaikuttavuus.models.schedule import INVITATION_STATUSES
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit, messaging, schedule
from vaikuttavuus.services.schedule import InvitationActionError, InvitationFilters
from vaikuttavuus.views.common import require_pilot, visible_pilots
from vaikuttavuus.web import day, moment

bp = Blueprint("invitations", __name__, url_prefix="/invitations")

PAGE_SIZE = 50

INVITATION_STATUS_LABELS = {
    "scheduled": _l("scheduled"),
    "open": _l("open"),
    "completed": _l("answered"),
    "expired": _l("expired"),
    "cancelled": _l("cancelled"),
    "opted_out": _l("declined"),
}
MESSAGE_STATUS_LABELS = {
    "pending": _l("waiting"),
    "sending": _l("being sent"),
    "sent": _l("sent"),
    "failed": _l("failed"),
    "cancelled": _l("cancelled"),
}
PURPOSE_LABELS = {
    "initial": _l("invitation"),
    "reminder": _l("reminder"),
    "resend": _l("sent again"),
}
ACTION_ERRORS = {
    "completed": _l("The questionnaire has already been answered."),
    "cancelled": _l("The invitation has been cancelled."),
    "opted_out": _l("The person does not want questionnaires."),
    "withdrawn": _l("The person's enrolment is no longer active."),
    "erased": _l("The person's data have been erased."),
    "expired": _l("The answering time has ended. Extend it first."),
    "scheduled": _l("The answering time has not started yet."),
    "outside_window": _l("Today is outside the answering time. Extend it first."),
    "channel": _l("The person has no contact details for that channel."),
    "days": _l("Choose a number of days between 1 and 365."),
}
ACTION_ERRORS_RESTORE = {
    **ACTION_ERRORS,
    "cancelled": _l("The cancellation cannot be undone."),
}


MESSAGE_NOTES = {
    schedule.CANCELLED_BY_LEAD: _l("Stopped: the invitation was cancelled."),
    "invitation no longer open": _l("Stopped: the invitation was no longer open."),
    "withdrawn or erased": _l("Stopped: the person withdrew or their data were erased."),
    "no invitation": _l("The invitation no longer exists."),
    "no e-mail, phone or postal address": _l(
        "The person has no e-mail address, phone number or postal address."
    ),
    "no email contact": _l("The person has no e-mail address."),
    "no sms contact": _l("The person has no phone number."),
    "interrupted while sending (claim lease expired); not re-sent automatically": _l(
        "Sending was interrupted; the message is not sent again automatically."
    ),
}
"""The notes the sender stores on a message (English, for the log), as the page shows them."""


def message_note(note: str | None) -> tuple[str, str | None]:
    """A stored message note as (text in the user's language, technical detail or None)."""
    if not note:
        return "", None
    if note in MESSAGE_NOTES:
        return str(MESSAGE_NOTES[note]), None
    if note.startswith("not sent: ") and note[10:] in ACTION_ERRORS:
        return _("Not sent: %(reason)s", reason=ACTION_ERRORS[note[10:]]), None
    # An error from the mail server or the SMS gateway: shown as it came, under a label.
    return _("Delivery failed."), note


def _labels() -> dict[str, object]:
    return {
        "status_labels": INVITATION_STATUS_LABELS,
        "message_status_labels": MESSAGE_STATUS_LABELS,
        "purpose_labels": PURPOSE_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "message_note": message_note,
    }


def web_letter_batch_size() -> int:
    """Letters per download: small enough to render well within the server's request timeout
    (the CLI prints larger batches)."""
    return int(current_app.config.get("WEB_LETTER_BATCH_SIZE") or 50)


def _today() -> date:
    return messaging.make_clock().today


@bp.get("/")
@allow(Role.PILOT_LEAD)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("invitations.listing", pilot_code=pilots[0].code))
    return render_template("invitations/index.html", pilots=pilots)


def _filters(pilot: Pilot) -> InvitationFilters:
    """Filters from the query string; unknown values are ignored."""
    status = request.args.get("status") or None
    time_point = request.args.get("time_point") or None
    arm = request.args.get("arm") or None
    return InvitationFilters(
        status=status if status in INVITATION_STATUSES else None,
        time_point=time_point if time_point in {tp.code for tp in pilot.time_points} else None,
        arm=arm if arm in {a.code for a in pilot.arms} else None,
        failed_messages=request.args.get("delivery") == "failed",
        query=(request.args.get("q") or "").strip()[:80],
    )


@bp.get("/<pilot_code>/")
@allow(Role.PILOT_LEAD)
def listing(pilot_code: str) -> str:
    pilot = require_pilot(pilot_code)
    filters = _filters(pilot)
    language = current_language()
    page = schedule.list_invitations(
        db.session,
        pilot.id,
        filters,
        language,
        page=request.args.get("page", 1, type=int) or 1,
        page_size=PAGE_SIZE,
        today=_today(),
    )
    clock = messaging.make_clock()
    audit.record(
        "view_invitations",
        object_type="pilot",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={
            # The search text may be a name: only its length goes to the audit trail.
            "filters": {
                **{k: v for k, v in vars(filters).items() if v and k != "query"},
                **({"query_length": len(filters.query)} if filters.query else {}),
            },
            "page": page.page,
            "rows": len(page.rows),
        },
    )
    return render_template(
        "invitations/list.html",
        pilot=pilot,
        language=language,
        result=page,
        filters=filters,
        letters_waiting=messaging.pending_letters(db.session, clock, pilot.code),
        sending_stalled_since=messaging.waiting_since(db.session, clock),
        letter_batch_size=web_letter_batch_size(),
        letter_form=LetterBatchForm(),
        statuses=INVITATION_STATUSES,
        **_labels(),
    )


def _invitation(pilot: Pilot, invitation_id: int) -> Invitation:
    invitation = schedule.pilot_invitation(db.session, pilot.id, invitation_id)
    if invitation is None:
        abort(404)
    return invitation


@bp.get("/<pilot_code>/<int:invitation_id>")
@allow(Role.PILOT_LEAD)
def detail(pilot_code: str, invitation_id: int) -> str:
    pilot = require_pilot(pilot_code)
    invitation = _invitation(pilot, invitation_id)
    person = invitation.enrolment.person
    today = _today()
    resend_form = ResendForm()
    resend_form.set_channels(
        messaging.available_channels(person.email, person.phone, person.postal_address)
    )
    audit.record(
        "view_invitation",
        object_type="invitation",
        object_id=invitation.id,
        person_id=person.id,
        pilot_code=pilot.code,
    )
    return render_template(
        "invitations/detail.html",
        pilot=pilot,
        language=current_language(),
        invitation=invitation,
        person=person,
        messages=messaging.messages_of(db.session, invitation.id),
        can_resend=schedule.sendable_problem(invitation, today) is None,
        can_extend=schedule.can_extend(invitation),
        can_cancel=invitation.status not in schedule.FINAL_STATUSES,
        can_restore=schedule.can_restore(invitation),
        can_enter=schedule.unanswered_and_answerable(invitation),
        resend_form=resend_form,
        extend_form=ExtendForm(),
        restore_form=RestoreForm(),
        **_labels(),
    )


def _back(pilot: Pilot, invitation: Invitation) -> Response:
    return redirect(
        url_for("invitations.detail", pilot_code=pilot.code, invitation_id=invitation.id)
    )


def _refused(error: InvitationActionError, messages: dict[str, object] | None = None) -> None:
    known = messages or ACTION_ERRORS
    flash(str(known.get(error.code, _("The action is not possible now."))), "error")


@bp.post("/<pilot_code>/<int:invitation_id>/resend")
@allow(Role.PILOT_LEAD)
def resend(pilot_code: str, invitation_id: int) -> Response:
    pilot = require_pilot(pilot_code)
    invitation = _invitation(pilot, invitation_id)
    person = invitation.enrolment.person
    form = ResendForm()
    form.set_channels(
        messaging.available_channels(person.email, person.phone, person.postal_address)
    )
    if not form.validate_on_submit():
        flash(_("Choose one of the channels."), "error")
        return _back(pilot, invitation)
    try:
        message = messaging.resend(
            db.session, invitation, messaging.make_clock(), channel=form.channel.data or None
        )
    except InvitationActionError as error:
        _refused(error)
        return _back(pilot, invitation)
    audit.record(
        "resend_invitation",
        object_type="invitation",
        object_id=invitation.id,
        person_id=person.id,
        pilot_code=pilot.code,
        details={"message_id": message.id, "channel": message.channel},
    )
    if message.channel == "letter":
        flash(_("A new letter will be in the next letter batch."), "info")
    elif (since := messaging.waiting_since(db.session, messaging.make_clock())) is not None:
        flash(
            _(
                "The new link is waiting to be sent, but messages have been waiting since "
                "%(time)s: sending does not seem to run. Ask the administrator to check it.",
                time=moment(since),
            ),
            "error",
        )
    else:
        flash(
            _(
                "The new link is waiting to be sent. It goes out the next time messages are "
                "sent (normally every few minutes)."
            ),
            "info",
        )
    return _back(pilot, invitation)


@bp.route("/<pilot_code>/<int:invitation_id>/cancel", methods=["GET", "POST"])
@allow(Role.PILOT_LEAD)
def cancel(pilot_code: str, invitation_id: int) -> Response | str:
    """Cancelling asks first (this page); the detail page then offers to undo it."""
    pilot = require_pilot(pilot_code)
    invitation = _invitation(pilot, invitation_id)
    form = CancelForm()
    if request.method == "GET":
        if invitation.status in schedule.FINAL_STATUSES:
            return _back(pilot, invitation)
        audit.record(
            "view_invitation",
            object_type="invitation",
            object_id=invitation.id,
            person_id=invitation.enrolment.person_id,
            pilot_code=pilot.code,
            details={"page": "cancel"},
        )
        return render_template(
            "invitations/cancel.html",
            pilot=pilot,
            language=current_language(),
            invitation=invitation,
            person=invitation.enrolment.person,
            form=form,
            status_labels=INVITATION_STATUS_LABELS,
        )
    if not form.validate_on_submit():
        abort(400)
    previous = invitation.status
    try:
        schedule.cancel_invitation(db.session, invitation, datetime.now(UTC))
    except InvitationActionError as error:
        _refused(error)
        return _back(pilot, invitation)
    audit.record(
        "cancel_invitation",
        object_type="invitation",
        object_id=invitation.id,
        person_id=invitation.enrolment.person_id,
        pilot_code=pilot.code,
        details={"previous_status": previous},
    )
    flash(
        _(
            "The invitation was cancelled. Its links no longer work. If this was a mistake, "
            "undo it below."
        ),
        "info",
    )
    return _back(pilot, invitation)


@bp.post("/<pilot_code>/<int:invitation_id>/restore")
@allow(Role.PILOT_LEAD)
def restore(pilot_code: str, invitation_id: int) -> Response:
    """Undo a cancellation: the links and the stopped messages work again."""
    pilot = require_pilot(pilot_code)
    invitation = _invitation(pilot, invitation_id)
    if not RestoreForm().validate_on_submit():
        abort(400)
    try:
        status = schedule.restore_invitation(db.session, invitation, _today())
    except InvitationActionError as error:
        _refused(error, ACTION_ERRORS_RESTORE)
        return _back(pilot, invitation)
    audit.record(
        "restore_invitation",
        object_type="invitation",
        object_id=invitation.id,
        person_id=invitation.enrolment.person_id,
        pilot_code=pilot.code,
        details={"status": status},
    )
    flash(
        _(
            "The cancellation was undone (status now: %(status)s). The invitation's links work "
            "again.",
            status=INVITATION_STATUS_LABELS[status],
        ),
        "info",
    )
    return _back(pilot, invitation)


@bp.post("/<pilot_code>/<int:invitation_id>/extend")
@allow(Role.PILOT_LEAD)
def extend(pilot_code: str, invitation_id: int) -> Response:
    pilot = require_pilot(pilot_code)
    invitation = _invitation(pilot, invitation_id)
    form = ExtendForm()
    if not form.validate_on_submit():
        flash(str(ACTION_ERRORS["days"]), "error")
        return _back(pilot, invitation)
    previous = invitation.status
    try:
        old, new = schedule.extend_invitation(
            db.session, invitation, int(form.days.data or 0), _today()
        )
    except InvitationActionError as error:
        _refused(error)
        return _back(pilot, invitation)
    audit.record(
        "extend_invitation",
        object_type="invitation",
        object_id=invitation.id,
        person_id=invitation.enrolment.person_id,
        pilot_code=pilot.code,
        details={
            "closes_on": [old.isoformat(), new.isoformat()],
            "status": [previous, invitation.status],
        },
    )
    flash(_("The answering time now ends on %(date)s.", date=day(new)), "info")
    return _back(pilot, invitation)


@bp.post("/<pilot_code>/letters")
@allow(Role.PILOT_LEAD)
def letters(pilot_code: str) -> Response:
    """The next batch of printed letters as a PDF; the letters count as sent once it exists."""
    pilot = require_pilot(pilot_code)
    form = LetterBatchForm()
    if not form.validate_on_submit():
        abort(400)
    db.session.commit()  # the batch commits its own claims; start from a clean unit of work
    batch = messaging.produce_letter_batch(
        db.session,
        messaging.make_clock(),
        pilot_code=pilot.code,
        limit=web_letter_batch_size(),
        language=current_language(),
    )
    if batch is None:
        flash(_("No letters are waiting to be printed."), "info")
        return redirect(url_for("invitations.listing", pilot_code=pilot.code))
    audit.record(
        "export_letters",
        object_type="letter_batch",
        object_id=batch.batch_id,
        pilot_code=pilot.code,
        details={"letters": batch.letters, "person_ids": list(batch.person_ids)},
    )
    response = make_response(batch.pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{pilot.code}-letters-{batch.batch_id}.pdf"'
    )
    return response
