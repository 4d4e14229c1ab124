"""Pilot leads' invitations and administrators' pages after the walkthrough (issue 17):
cancelling asks first and can be undone, the list's order, honest sending messages,
translated message notes; users' roles, pilots and passwords; a readable audit log.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_token, login
from tests.support.staff import staff_login
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, AuditEvent, Invitation, OutboxMessage, TimePoint, User
from vaikuttavuus.services import audit, messaging


def _invitation(enrolment: Any, time_point: str = "baseline") -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == time_point)
    )
    assert invitation is not None
    return invitation


def _actions(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == name)))


@pytest.fixture
def lead(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("vetaja", "pilot_lead")
    staff_login(client, "vetaja")
    return client


@pytest.fixture
def admin(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("paakayttaja", "admin")
    staff_login(client, "paakayttaja")
    return client


# -- invitations ----------------------------------------------------------------------------------


def test_cancelling_asks_first_and_can_be_undone(
    lead: FlaskClient, enrol_patient: Any, patient_link: Any, app: Flask
) -> None:
    enrolment = enrol_patient(index_offset_days=10, email="p@example.org")
    link = patient_link(enrolment)
    invitation = _invitation(enrolment)
    messaging.enqueue(db.session, messaging.make_clock())
    db.session.commit()
    url = f"/invitations/bph/{invitation.id}"
    detail = lead.get(url).get_data(as_text=True)
    # The detail page only links to the question; the question names what happens.
    assert f'href="{url}/cancel"' in detail and f'action="{url}/cancel"' not in detail
    confirm = lead.get(f"{url}/cancel").get_data(as_text=True)
    assert "Perutaanko kutsu?" in confirm and "Ei, säilytä kutsu" in confirm
    db.session.refresh(invitation)
    assert invitation.status == "open"  # asking changes nothing

    token = csrf_token(lead, f"{url}/cancel")
    after = lead.post(f"{url}/cancel", data={"csrf_token": token}, follow_redirects=True)
    html = after.get_data(as_text=True)
    assert "Kutsu peruttiin" in html and f'action="{url}/restore"' in html
    db.session.refresh(invitation)
    assert invitation.status == "cancelled"
    assert app.test_client().get(f"/r/{link}").status_code == 404
    (message,) = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.invitation_id == invitation.id)
    )
    assert message.status == "cancelled"
    assert "Pysäytetty: kutsu peruttiin." in html  # the note in the user's language

    restored = lead.post(f"{url}/restore", data={"csrf_token": token}, follow_redirects=True)
    assert "Kutsun peruminen peruttiin" in restored.get_data(as_text=True)
    db.session.expire_all()
    assert invitation.status == "open" and invitation.cancelled_at is None
    assert db.session.get(OutboxMessage, message.id).status == "pending"  # type: ignore[union-attr]
    assert all(
        t.revoked_at is None
        for t in db.session.scalars(
            select(AccessToken).where(AccessToken.invitation_id == invitation.id)
        )
    )
    assert app.test_client().get(f"/r/{link}").status_code == 200
    (event,) = _actions("restore_invitation")
    assert event.person_id == enrolment.person_id and event.details == {"status": "open"}
    # A withdrawal's cancellation is not the pilot lead's to undo.
    assert lead.post(f"{url}/restore", data={"csrf_token": token}).status_code == 302
    assert len(_actions("restore_invitation")) == 1


def test_the_list_opens_with_the_opened_windows_latest_first(
    lead: FlaskClient, enrol_patient: Any
) -> None:
    """An upcoming invitation (even one the person declined) comes after the opened ones."""
    future = enrol_patient(index_offset_days=200, last_name="Tuleva")
    future.person.opted_out_at = datetime.now(UTC)
    _invitation(future).status = "opted_out"
    older = enrol_patient(index_offset_days=-10, last_name="Vanhempi")
    newer = enrol_patient(index_offset_days=10, last_name="Uudempi")
    db.session.commit()
    html = lead.get("/invitations/bph/?time_point=baseline").get_data(as_text=True)
    order = [html.index(e.person.pseudonym) for e in (newer, older, future)]
    assert order == sorted(order)


def test_a_resend_says_honestly_when_it_goes(
    lead: FlaskClient, enrol_patient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrolment = enrol_patient(index_offset_days=10, email="p@example.org")
    invitation = _invitation(enrolment)
    url = f"/invitations/bph/{invitation.id}"
    token = csrf_token(lead, url)
    page = lead.post(
        f"{url}/resend", data={"channel": "", "csrf_token": token}, follow_redirects=True
    )
    html = page.get_data(as_text=True)
    assert "muutaman minuutin kuluessa" not in html
    assert "lähtee, kun viestit seuraavan kerran lähetetään" in html
    # A message that has waited for an hour: sending does not run, and the pages say so.
    db.session.execute(
        OutboxMessage.__table__.update().values(not_before=datetime.now(UTC) - timedelta(hours=1))
    )
    db.session.commit()
    page = lead.post(
        f"{url}/resend", data={"channel": "", "csrf_token": token}, follow_redirects=True
    )
    assert "lähetys ei näytä olevan käynnissä" in page.get_data(as_text=True)
    listing = lead.get("/invitations/bph/").get_data(as_text=True)
    assert "Viestit eivät lähde" in listing


# -- administrators -------------------------------------------------------------------------------


def test_an_administrator_changes_role_and_pilots_and_is_warned_of_none(
    admin: FlaskClient, make_user: Any
) -> None:
    user = make_user("hoitaja", "clinician", pilots=("bph",))
    url = f"/admin/users/{user.id}"
    page = admin.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'value="bph" checked' in page or 'checked value="bph"' in page or "checked" in page
    token = csrf_token(admin, url)
    saved = admin.post(
        url,
        data={
            "csrf_token": token,
            "display_name": "Hoitaja Testi",
            "email": "",
            "role": "pilot_lead",
            "pilots": ["bph", "older-adults"],
        },
        follow_redirects=True,
    )
    assert saved.status_code == 200
    db.session.expire_all()
    changed = db.session.get(User, user.id)
    assert changed is not None and changed.role == "pilot_lead"
    assert sorted(p.code for p in changed.pilots) == ["bph", "older-adults"]
    (event,) = _actions("update_user")
    assert event.details["role"] == ["clinician", "pilot_lead"]
    assert event.details["pilots"] == [["bph"], ["bph", "older-adults"]]

    warned = admin.post(
        url,
        data={"csrf_token": token, "display_name": "Hoitaja Testi", "role": "clinician"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "ei ole pilotteja" in warned
    listing = admin.get("/admin/users").get_data(as_text=True)
    assert "Ei pilotteja: ei näe potilaita" in listing


def test_a_new_clinician_without_pilots_is_warned_about(admin: FlaskClient) -> None:
    token = csrf_token(admin, "/admin/users")
    page = admin.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "uusi",
            "display_name": "Uusi Kliinikko",
            "role": "clinician",
            "password": "kaunis kesäinen aamu järvellä",
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "uusi ei ole pilotteja" in page.replace("Käyttäjällä ", "")


def test_an_administrator_resets_a_password_that_must_be_replaced(
    admin: FlaskClient, make_user: Any, app: Flask
) -> None:
    user = make_user("unohtaja", "clinician")
    url = f"/admin/users/{user.id}/password"
    token = csrf_token(admin, f"/admin/users/{user.id}")
    weak = admin.post(url, data={"csrf_token": token, "new_password": "salasana123"})
    assert weak.status_code == 422
    temporary = "sininen polkupyörä talvella"
    assert admin.post(url, data={"csrf_token": token, "new_password": temporary}).status_code == 302
    assert _actions("reset_password")[0].details == {"username": "unohtaja"}
    staff = app.test_client()
    assert login(staff, "unohtaja", PASSWORD).status_code == 200  # the old one is gone
    response = login(staff, "unohtaja", temporary)
    assert response.headers["Location"].endswith("/auth/password")
    assert staff.get("/clinician/").headers["Location"].endswith("/auth/password")


def test_the_audit_log_names_actions_and_finds_a_pseudonym(
    admin: FlaskClient, enrol_patient: Any, app: Flask
) -> None:
    enrolment = enrol_patient(index_offset_days=10)
    other = enrol_patient(index_offset_days=10)
    with app.test_request_context():
        for person in (enrolment.person_id, other.person_id):
            audit.record(
                "view_patient",
                object_type="enrolment",
                object_id=1,
                person_id=person,
                pilot_code="bph",
                actor="kliinikko",
            )
        db.session.commit()
    pseudonym = enrolment.person.pseudonym
    html = admin.get("/admin/audit", query_string={"person": pseudonym.lower()}).get_data(
        as_text=True
    )
    assert "Katsoi potilaan tietoja" in html and "view_patient" not in re.sub(
        r'value="[^"]*"', "", html
    )
    assert pseudonym in html and other.person.pseudonym not in html
    assert "Eturauhasen hyvänlaatuisen liikakasvun toimenpiteet" in html  # the pilot's name
    english = admin.get("/admin/audit", query_string={"person": pseudonym, "lang": "en"}).get_data(
        as_text=True
    )
    assert "Viewed a patient" in english


def test_pilot_names_follow_the_language_of_the_page(admin: FlaskClient, make_user: Any) -> None:
    make_user("kaksikielinen", "clinician", pilots=("bph",))
    english = admin.get("/admin/users?lang=en").get_data(as_text=True)
    assert "Procedures for benign prostatic hyperplasia" in english
    assert "Eturauhasen" not in english
    swedish = admin.get("/admin/users?lang=sv").get_data(as_text=True)
    assert "Åtgärder vid godartad prostataförstoring" in swedish


def test_the_site_icon(client: FlaskClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/vnd.microsoft.icon"
    assert icon.data[:4] == b"\x00\x00\x01\x00"
    page = client.get("/auth/login").get_data(as_text=True)
    href = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert href
    static = client.get(href.group(1))
    assert static.status_code == 200 and static.data.startswith(b"<svg")
    static.close()
