"""Assisted entry: staff enter a patient's answers through the same pages, recorded as such."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import CSRF_FIELD, FORM_TOKEN_FIELD, csrf_token
from tests.support.staff import forget_request_globals, staff_login
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, AuditEvent, Invitation, Response, TimePoint

IPSS = {
    "ipss1": "3",
    "ipss2": "4",
    "ipss3": "2",
    "ipss4": "3",
    "ipss5": "4",
    "ipss6": "1",
    "ipss7": "2",
    "ipss_qol": "4",
}
QUESTIONNAIRE_FORM = re.compile(r'<form method="post" class="questionnaire".*?</form>', re.DOTALL)


def baseline(enrolment: Any) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    return invitation


def fill(html: str, answers: dict[str, str]) -> dict[str, str]:
    """Values for every question of a page: the given answer or a plausible default."""
    form = QUESTIONNAIRE_FORM.search(html)
    assert form, html[:1500]
    names = set(re.findall(r'name="([a-z][a-z0-9_]*)"', form.group(0)))
    names -= {"csrf_token", "form_token", "direction"}
    data = {}
    for name in names:
        if name in answers:
            data[name] = answers[name]
            continue
        option = re.search(rf'name="{name}"[^>]*type="radio"[^>]*value="([^"]+)"', html) or (
            re.search(rf'type="radio"[^>]*name="{name}"[^>]*value="([^"]+)"', html)
        )
        if option:
            data[name] = option.group(1)
        elif re.search(rf'<textarea[^>]*name="{name}"', html):
            data[name] = ""
        else:
            data[name] = "50"
    return data


def walk(client: FlaskClient, base: str, answers: dict[str, str], query: str = "") -> str:
    """Answer every page of an assisted entry (``query``: the start page's choices, e.g.
    ``?how=paper``); returns the review page."""
    number = 1
    page = client.get(f"{base}{number}{query}")
    while True:
        assert page.status_code == 200, page.get_data(as_text=True)[:500]
        html = page.get_data(as_text=True)
        token = CSRF_FIELD.search(QUESTIONNAIRE_FORM.search(html).group(0))  # type: ignore[union-attr]
        assert token, "the questionnaire form carries the session CSRF token"
        data = fill(html, answers)
        last = 'value="review"' in html
        data.update(csrf_token=token.group(1), direction="review" if last else "next")
        sent = client.post(page.request.full_path if query else f"{base}{number}", data=data)
        assert sent.status_code == 302, sent.get_data(as_text=True)[:2000]
        if last:
            assert "/review" in sent.headers["Location"]
            return client.get(sent.headers["Location"]).get_data(as_text=True)
        number += 1
        page = client.get(sent.headers["Location"])


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def clinician(client: FlaskClient, make_user: Any) -> Any:
    user = make_user("hoitaja", "clinician", pilots=("bph",))
    staff_login(client, "hoitaja")
    return user


def test_a_clinician_enters_answers_recorded_with_mode_and_proxy(
    client: FlaskClient, clinician: Any, enrol_patient: Any
) -> None:
    enrolment = enrol_patient(index_offset_days=10)
    invitation = baseline(enrolment)
    base = f"/assisted/bph/{invitation.id}/"
    patient_page = client.get(f"/clinician/bph/{enrolment.person.pseudonym}")
    assert f'href="{base}"' in patient_page.get_data(as_text=True)
    start = client.get(base)
    assert start.status_code == 200
    page = start.get_data(as_text=True)
    assert 'name="how" value="phone" checked' in page and 'name="how" value="paper"' in page
    assert 'name="proxy" value="1"' in page
    assert "Eturauhas" in client.get(f"{base}1?qlang=fi").get_data(as_text=True)

    review = walk(client, base, IPSS, query="?qlang=fi&how=paper&proxy=1")
    assert "Vastattu paperilomakkeella." in review or "Answered on a paper form." in review
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*class="submit-form".*?</form>', review, re.DOTALL
    )
    assert form, review[:3000]
    assert form.group(1).startswith(f"{base}submit"), form.group(1)
    token = CSRF_FIELD.search(form.group(0))
    assert token
    sent = client.post(html.unescape(form.group(1)), data={"csrf_token": token.group(1)})
    assert sent.status_code == 302
    assert sent.headers["Location"].endswith(f"/clinician/bph/{enrolment.person.pseudonym}")

    responses = db.session.scalars(
        select(Response).where(Response.enrolment_id == enrolment.id)
    ).all()
    assert responses
    for response in responses:
        assert response.status == "submitted"
        assert (response.mode, response.proxy) == ("paper", True)
        assert response.entered_by_user_id == clinician.id
        assert response.language == "fi"
    ipss = next(r for r in responses if r.instrument_code == "ipss")
    stored = dict(
        db.session.execute(
            select(Answer.item_id, Answer.value).where(Answer.response_id == ipss.id)
        ).all()
    )
    assert stored == IPSS
    db.session.refresh(invitation)
    assert invitation.status == "completed"

    for action in ("view_assisted_entry", "assisted_entry_save", "assisted_entry_submit"):
        found = events(action)
        assert found, action
        assert all(e.person_id == enrolment.person_id for e in found)
        assert all(e.user_id == clinician.id for e in found)
    # Submitting again (double click) stores nothing more and does not fail.
    again = client.post(form.group(1), data={"csrf_token": token.group(1)})
    assert again.status_code == 302
    assert len(events("assisted_entry_submit")) == 1


def test_pages_without_the_csrf_token_are_refused(
    client: FlaskClient, clinician: Any, enrol_patient: Any
) -> None:
    invitation = baseline(enrol_patient(index_offset_days=10))
    base = f"/assisted/bph/{invitation.id}/"
    html = client.get(f"{base}1").get_data(as_text=True)
    data = fill(html, IPSS)
    assert client.post(f"{base}1", data=dict(data, direction="next")).status_code == 400
    assert db.session.scalar(select(Answer.id)) is None
    assert client.post(f"{base}submit").status_code == 400
    db.session.refresh(invitation)
    assert invitation.status == "open"


def test_an_expired_unanswered_invitation_can_still_be_entered(
    client: FlaskClient, clinician: Any, enrol_patient: Any
) -> None:
    enrolment = enrol_patient(index_offset_days=-20)
    invitation = baseline(enrolment)
    assert invitation.status == "expired"
    base = f"/assisted/bph/{invitation.id}/"
    assert f'href="{base}"' in client.get(f"/clinician/bph/{enrolment.person.pseudonym}").get_data(
        as_text=True
    )
    review = walk(client, base, IPSS)
    token = CSRF_FIELD.search(review)
    assert token
    assert client.post(f"{base}submit", data={"csrf_token": token.group(1)}).status_code == 302
    db.session.refresh(invitation)
    assert invitation.status == "completed"


def test_answered_cancelled_and_opted_out_invitations_are_refused(
    client: FlaskClient, clinician: Any, enrol_patient: Any
) -> None:
    answered = baseline(enrol_patient(index_offset_days=10))
    answered.status = "completed"
    cancelled = baseline(enrol_patient(index_offset_days=10))
    cancelled.status = "cancelled"
    opted = enrol_patient(index_offset_days=10)
    opted.person.opted_out_at = datetime.now(UTC)
    db.session.commit()
    for invitation in (answered, cancelled, baseline(opted)):
        for path in ("", "1", "review"):
            response = client.get(f"/assisted/bph/{invitation.id}/{path}")
            assert response.status_code == 302, (invitation.status, path)
            assert "/clinician/bph/" in response.headers["Location"]
    assert db.session.scalar(select(Response.id)) is None


def test_a_response_the_patient_started_takes_the_staff_entrys_mode(
    client: FlaskClient, clinician: Any, enrol_patient: Any, patient_link: Any
) -> None:
    enrolment = enrol_patient(index_offset_days=10)
    token = patient_link(enrolment)
    patient = client.application.test_client()
    forget_request_globals()
    page = patient.get(f"/r/{token}/1").get_data(as_text=True)
    form_token = FORM_TOKEN_FIELD.search(page)
    assert form_token
    data = dict(fill(page, IPSS), form_token=form_token.group(1), direction="next")
    assert patient.post(f"/r/{token}/1", data=data).status_code == 302
    started = db.session.scalar(select(Response).where(Response.instrument_code == "ipss"))
    assert started is not None and started.mode == "web"

    forget_request_globals()
    base = f"/assisted/bph/{baseline(enrolment).id}/"
    html = client.get(f"{base}1").get_data(as_text=True)
    assert 'value="3"' in html  # the patient's answers are shown
    data = dict(fill(html, {}), csrf_token=csrf_token(client, f"{base}1"), direction="next")
    assert client.post(f"{base}1", data=data).status_code == 302
    db.session.refresh(started)
    assert (started.mode, started.proxy) == ("phone", False)
    assert started.entered_by_user_id == clinician.id


@pytest.mark.parametrize("role", ["management", "admin"])
def test_roles_without_patient_access_get_403(
    role: str, client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    invitation = baseline(enrol_patient(index_offset_days=10))
    make_user("muu", role)
    staff_login(client, "muu")
    token = csrf_token(client, "/auth/password")
    base = f"/assisted/bph/{invitation.id}/"
    for path in ("", "1", "review"):
        assert client.get(f"{base}{path}").status_code == 403
    assert client.post(f"{base}1", data={"csrf_token": token}).status_code == 403
    assert client.post(f"{base}submit", data={"csrf_token": token}).status_code == 403


def test_staff_of_another_pilot_get_403(
    client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    invitation = baseline(enrol_patient(index_offset_days=10))
    make_user("muu", "pilot_lead", pilots=("older-adults",))
    staff_login(client, "muu")
    assert client.get(f"/assisted/bph/{invitation.id}/").status_code == 403
    # …and an invitation of another pilot is not found under one's own pilot.
    assert client.get(f"/assisted/older-adults/{invitation.id}/").status_code == 404
