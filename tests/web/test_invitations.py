"""The pilot lead's invitation pages: list, detail, resend, cancel, extend, letters; CSRF; roles."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token
from tests.support.pdf_structure import assert_accessible
from tests.support.recording import Recorder
from tests.support.staff import forget_request_globals, staff_login
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, AuditEvent, Invitation, OutboxMessage, TimePoint
from vaikuttavuus.services import messaging

EMAIL = "potilas@example.org"


def baseline(enrolment: Any) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    return invitation


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def outbox(invitation: Invitation) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.invitation_id == invitation.id)
            .order_by(OutboxMessage.id)
        )
    )


@pytest.fixture
def lead(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("vetaja", "pilot_lead")
    staff_login(client, "vetaja")
    return client


def detail_url(invitation: Invitation) -> str:
    return f"/invitations/bph/{invitation.id}"


# -- pages -------------------------------------------------------------------------------------


def test_pilot_lead_lists_invitations_with_filters(lead: FlaskClient, enrol_patient: Any) -> None:
    open_one = enrol_patient(index_offset_days=10)
    expired = enrol_patient(index_offset_days=-5)
    clinic = enrol_patient(arm="outpatient_clinic", index_offset_days=100)
    page = lead.get("/invitations/bph/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for enrolment in (open_one, expired, clinic):
        assert enrolment.person.pseudonym in html

    html = lead.get("/invitations/bph/?status=expired").get_data(as_text=True)
    assert expired.person.pseudonym in html
    assert open_one.person.pseudonym not in html
    html = lead.get("/invitations/bph/?arm=outpatient_clinic").get_data(as_text=True)
    assert clinic.person.pseudonym in html
    assert open_one.person.pseudonym not in html
    html = lead.get("/invitations/bph/?time_point=baseline&status=open").get_data(as_text=True)
    assert open_one.person.pseudonym in html
    assert expired.person.pseudonym not in html
    assert clinic.person.pseudonym not in html
    html = lead.get("/invitations/bph/?status=nonsense&page=999").get_data(as_text=True)
    assert open_one.person.pseudonym in html  # unknown filters are ignored
    assert len(events("view_invitations")) == 5
    assert lead.get("/invitations/").status_code == 200  # two pilots: a chooser


def test_detail_shows_the_messages_and_is_audited(lead: FlaskClient, enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=10, email=EMAIL)
    messaging.run(db.session, messaging.make_clock(), Recorder().senders())
    invitation = baseline(enrolment)
    page = lead.get(detail_url(invitation))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert EMAIL in html  # the recipient of the sent message
    assert f'action="{detail_url(invitation)}/resend"' in html
    (event,) = events("view_invitation")
    assert event.person_id == enrolment.person_id
    assert event.object_id == str(invitation.id)
    assert lead.get("/invitations/bph/999999").status_code == 404


# -- actions -----------------------------------------------------------------------------------


def test_resend_needs_the_csrf_token(lead: FlaskClient, enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=10, email=EMAIL)
    invitation = baseline(enrolment)
    url = detail_url(invitation) + "/resend"
    assert lead.post(url, data={"channel": ""}).status_code == 400
    assert outbox(invitation) == []
    token = csrf_token(lead, detail_url(invitation))
    response = lead.post(url, data={"channel": "", "csrf_token": token})
    assert response.status_code == 302
    (message,) = outbox(invitation)
    assert message.purpose == "resend"
    assert message.channel == "email"
    assert message.status == "pending"
    (event,) = events("resend_invitation")
    assert event.person_id == enrolment.person_id
    # A channel the person has no contact for is refused.
    response = lead.post(url, data={"channel": "sms", "csrf_token": token})
    assert response.status_code == 302
    assert len(outbox(invitation)) == 1


def test_cancel_needs_the_csrf_token(
    lead: FlaskClient, enrol_patient: Any, patient_link: Any, client: FlaskClient
) -> None:
    enrolment = enrol_patient(index_offset_days=10)
    link = patient_link(enrolment)
    invitation = baseline(enrolment)
    url = detail_url(invitation) + "/cancel"
    assert lead.post(url).status_code == 400
    db.session.refresh(invitation)
    assert invitation.status == "open"
    response = lead.post(url, data={"csrf_token": csrf_token(lead, detail_url(invitation))})
    assert response.status_code == 302
    db.session.refresh(invitation)
    assert invitation.status == "cancelled"
    assert all(
        t.revoked_at is not None
        for t in db.session.scalars(
            select(AccessToken).where(AccessToken.invitation_id == invitation.id)
        )
    )
    forget_request_globals()
    assert client.application.test_client().get(f"/r/{link}").status_code == 404
    (event,) = events("cancel_invitation")
    assert event.details == {"previous_status": "open"}


def test_extend_reopens_an_expired_invitation(lead: FlaskClient, enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=-5)
    invitation = baseline(enrolment)
    assert invitation.status == "expired"
    url = detail_url(invitation) + "/extend"
    assert lead.post(url, data={"days": "10"}).status_code == 400
    token = csrf_token(lead, detail_url(invitation))
    assert lead.post(url, data={"days": "0", "csrf_token": token}).status_code == 302
    db.session.refresh(invitation)
    assert invitation.status == "expired"  # 0 days: refused
    assert lead.post(url, data={"days": "10", "csrf_token": token}).status_code == 302
    db.session.refresh(invitation)
    assert invitation.status == "open"
    assert invitation.closes_on == date.today() + timedelta(days=10)
    (event,) = events("extend_invitation")
    assert event.details["status"] == ["expired", "open"]
    assert event.person_id == enrolment.person_id


def test_letter_batch_download(lead: FlaskClient, enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=10, postal_address="Katu 1\n15100 Lahti")
    messaging.run(db.session, messaging.make_clock(), Recorder().senders())
    listing = lead.get("/invitations/bph/")
    assert 'action="/invitations/bph/letters"' in listing.get_data(as_text=True)
    url = "/invitations/bph/letters"
    assert lead.post(url).status_code == 400
    (message,) = outbox(baseline(enrolment))
    assert message.status == "pending"
    response = lead.post(url, data={"csrf_token": csrf_token(lead, "/invitations/bph/")})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert_accessible(response.data, "fi", figures=1, charts_with_numbers=False)  # the QR code
    (message,) = outbox(baseline(enrolment))
    assert message.status == "sent"
    assert message.letter_batch
    (event,) = events("export_letters")
    assert event.details["person_ids"] == [enrolment.person_id]
    # Nothing left: back to the list with a message.
    again = lead.post(url, data={"csrf_token": csrf_token(lead, "/invitations/bph/")})
    assert again.status_code == 302


# -- who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clinician", "management", "admin"])
def test_other_roles_get_403(
    role: str, client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    enrolment = enrol_patient(index_offset_days=10, email=EMAIL)
    invitation = baseline(enrolment)
    make_user("toinen", role)
    staff_login(client, "toinen")
    token = csrf_token(client, "/auth/password")
    for path in ("/invitations/", "/invitations/bph/", detail_url(invitation)):
        assert client.get(path).status_code == 403, path
    for action in ("resend", "cancel", "extend"):
        response = client.post(
            f"{detail_url(invitation)}/{action}", data={"csrf_token": token, "days": "5"}
        )
        assert response.status_code == 403, action
    assert client.post("/invitations/bph/letters", data={"csrf_token": token}).status_code == 403
    db.session.refresh(invitation)
    assert invitation.status == "open"
    assert outbox(invitation) == []


def test_a_pilot_lead_of_another_pilot_gets_403(
    client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    invitation = baseline(enrol_patient(index_offset_days=10))
    make_user("muu", "pilot_lead", pilots=("older-adults",))
    staff_login(client, "muu")
    token = csrf_token(client, "/invitations/older-adults/")
    assert client.get("/invitations/bph/").status_code == 403
    assert client.get(detail_url(invitation)).status_code == 403
    response = client.post(f"{detail_url(invitation)}/cancel", data={"csrf_token": token})
    assert response.status_code == 403
    db.session.refresh(invitation)
    assert invitation.status == "open"


def test_anonymous_users_are_sent_to_the_login(client: FlaskClient, enrol_patient: Any) -> None:
    invitation = baseline(enrol_patient(index_offset_days=10))
    response = client.get(detail_url(invitation))
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]
