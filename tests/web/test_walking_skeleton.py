"""The walking skeleton end to end, through the Flask test client with CSRF on."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import FORM_TOKEN_FIELD, login
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, Invitation, Response

IPSS_ANSWERS = {
    "ipss1": "3",
    "ipss2": "4",
    "ipss3": "2",
    "ipss4": "3",
    "ipss5": "4",
    "ipss6": "1",
    "ipss7": "2",
    "ipss_qol": "4",
}


def answer_pages(client: FlaskClient, token: str, answers: dict[str, str]) -> str:
    """Walk every page of the link, answering items we know and leaving the rest to defaults.

    Returns the HTML of the review page.
    """
    page = client.get(f"/r/{token}/1")
    assert page.status_code == 200
    number = 1
    while True:
        html = page.get_data(as_text=True)
        form_token = FORM_TOKEN_FIELD.search(html)
        assert form_token, html[:500]
        names = set(re.findall(r'name="([a-z][a-z0-9_]*)"', html)) - {"form_token", "direction"}
        data = {"form_token": form_token.group(1), "direction": "next"}
        for name in names:
            data[name] = answers.get(name, _default_answer(html, name))
        is_last = 'value="review"' in html
        if is_last:
            data["direction"] = "review"
        response = client.post(f"/r/{token}/{number}", data=data)
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        if is_last:
            assert response.headers["Location"].startswith(f"/r/{token}/review")
            return client.get(f"/r/{token}/review").get_data(as_text=True)
        number += 1
        page = client.get(f"/r/{token}/{number}")


def _default_answer(html: str, name: str) -> str:
    """The first option of a choice item, a mid value for a number, empty for text."""
    option = re.search(rf'name="{name}"[^>]*type="radio"[^>]*value="([^"]+)"', html) or re.search(
        rf'type="radio"[^>]*name="{name}"[^>]*value="([^"]+)"', html
    )
    if option:
        return option.group(1)
    if re.search(rf'<textarea[^>]*name="{name}"', html):
        return ""
    return "50"


def test_patient_answers_ipss_and_sees_thanks(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    enrolment = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10)
    token = patient_link(enrolment, "baseline")

    start = client.get(f"/r/{token}")
    assert start.status_code == 200
    html = start.get_data(as_text=True)
    assert re.search(r'<html lang="fi"[ >]', html)
    assert "Eturauhasoireet (IPSS)" in html  # Finnish by default

    review = answer_pages(client, token, IPSS_ANSWERS)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    sent = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert sent.status_code == 302
    thanks = client.get(sent.headers["Location"])
    assert thanks.status_code == 200
    assert "Kiitos" in thanks.get_data(as_text=True)

    response = db.session.scalar(
        select(Response).where(
            Response.enrolment_id == enrolment.id, Response.instrument_code == "ipss"
        )
    )
    assert response is not None
    assert response.status == "submitted"
    assert response.language == "fi"
    assert response.mode == "web"
    assert response.submitted_at is not None
    assert response.instrument_version.code == "ipss"
    assert response.instrument_version.version == "1"
    assert response.time_point.code == "baseline"
    stored = dict(
        db.session.execute(
            select(Answer.item_id, Answer.value).where(Answer.response_id == response.id)
        ).all()
    )
    assert stored == IPSS_ANSWERS
    invitation = db.session.get(Invitation, response.invitation_id)
    assert invitation is not None
    assert invitation.status == "completed"


def test_double_submit_stores_one_response(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    enrolment = enrol_patient(index_offset_days=5)
    token = patient_link(enrolment, "baseline")
    review = answer_pages(client, token, IPSS_ANSWERS)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    first = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    second = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"].startswith(f"/r/{token}/thanks")
    count = db.session.scalar(
        select(db.func.count(Response.id)).where(
            Response.enrolment_id == enrolment.id, Response.instrument_code == "ipss"
        )
    )
    assert count == 1


def test_unknown_link_gets_the_invalid_page(client: FlaskClient) -> None:
    response = client.get("/r/this-is-not-a-valid-token-at-all")
    assert response.status_code == 404
    assert "Linkki ei ole voimassa" in response.get_data(as_text=True)


def test_clinician_sees_patient_ipss_against_cohort(
    client: FlaskClient, enrol_patient: Any, patient_link: Any, make_user: Any
) -> None:
    patients = [enrol_patient(index_offset_days=5) for _ in range(3)]
    for offset, enrolment in enumerate(patients):
        token = patient_link(enrolment, "baseline")
        answers = dict(IPSS_ANSWERS, ipss1=str(offset + 1))
        review = answer_pages(client.application.test_client(), token, answers)
        form_token = FORM_TOKEN_FIELD.search(review)
        assert form_token
        client.application.test_client().post(
            f"/r/{token}/submit", data={"form_token": form_token.group(1)}
        )
    make_user("kliinikko", "clinician")
    assert login(client, "kliinikko").status_code == 302

    listing = client.get("/clinician/bph/")
    assert listing.status_code == 200
    person = patients[0].person
    assert person.pseudonym in listing.get_data(as_text=True)

    page = client.get(f"/clinician/bph/{person.pseudonym}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "data:image/svg+xml;base64," in html  # the matplotlib chart
    # Patient total: 1+4+2+3+4+1+2 = 17; cohort median of 17, 18, 19 is 18.
    assert re.search(r"<td>17</td>", html)
    assert "18,0" in html


def test_pilot_lead_downloads_the_cohort_summary_pdf(
    client: FlaskClient, enrol_patient: Any, make_user: Any
) -> None:
    for _ in range(6):
        enrol_patient(index_offset_days=5)
    make_user("pilotti", "pilot_lead")
    assert login(client, "pilotti").status_code == 302
    overview = client.get("/pilot/bph/")
    assert overview.status_code == 200
    response = client.get("/pilot/bph/summary.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert len(response.data) > 5000
