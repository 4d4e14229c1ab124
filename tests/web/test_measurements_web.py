"""The clinician's measurement form: the same checks as imports, corrections with history,
CSRF, audit and who may use it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, ClinicalMeasurement

DAY = date.today() - timedelta(days=3)


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def patient(enrol_patient: Any) -> Any:
    return enrol_patient("bph", "operating_room")


@pytest.fixture
def clinician(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("doc", "clinician", pilots=("bph",))
    assert login(client, "doc").status_code == 302
    return client


def url(enrolment: Any) -> str:
    return f"/measurements/bph/{enrolment.person.pseudonym}"


def post_measurement(client: FlaskClient, enrolment: Any, **fields: str) -> Any:
    data = {"measure": "qmax", "value": "12,5", "measured_on": DAY.isoformat(), "time_point": ""}
    data.update(fields)
    data["csrf_token"] = csrf_token(client, url(enrolment))
    return client.post(url(enrolment) + "?lang=en", data=data)


def stored() -> list[ClinicalMeasurement]:
    return list(db.session.scalars(select(ClinicalMeasurement).order_by(ClinicalMeasurement.id)))


def test_a_clinician_adds_a_measurement(clinician: FlaskClient, patient: Any) -> None:
    response = post_measurement(clinician, patient)
    assert response.status_code == 302
    [measurement] = stored()
    assert (measurement.measure_code, measurement.value_num, measurement.unit) == (
        "qmax",
        12.5,
        "mL/s",
    )
    assert measurement.source == "form" and measurement.recorded_by_user_id is not None
    assert measurement.row_hash and len(measurement.row_hash) == 64
    page = clinician.get(url(patient) + "?lang=en").get_data(as_text=True)
    assert "12.5" in page and "current" in page
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "add_measurement"))
    assert event is not None and event.person_id == patient.person_id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"value": "75"}, "Must be between 0 and 60 mL/s."),
        ({"value": "paljon"}, "Not a number."),
        ({"measure": "clavien_dindo", "value": "VI"}, "Not an allowed value."),
        ({"measured_on": (date.today() + timedelta(days=5)).isoformat()}, "after the day of"),
        ({"measured_on": "31.2.2025"}, "Not a date."),
        ({"value": ""}, "A value is required."),
        ({"time_point": "m12"}, "outside the window of time point m12"),
    ],
)
def test_the_form_uses_the_import_checks(
    clinician: FlaskClient, patient: Any, fields: dict[str, str], message: str
) -> None:
    response = post_measurement(clinician, patient, **fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert stored() == []


def test_the_same_value_twice_is_refused(clinician: FlaskClient, patient: Any) -> None:
    assert post_measurement(clinician, patient).status_code == 302
    again = post_measurement(clinician, patient)
    assert again.status_code == 422
    assert "This value is already recorded." in again.get_data(as_text=True)
    assert len(stored()) == 1


def test_a_correction_keeps_the_old_value_with_the_reason(
    clinician: FlaskClient, patient: Any
) -> None:
    post_measurement(clinician, patient)
    [original] = stored()
    correct_url = f"{url(patient)}/{original.id}/correct"
    form = clinician.get(correct_url + "?lang=en").get_data(as_text=True)
    assert "Reason for the correction" in form
    token = csrf_token(clinician, correct_url)
    no_reason = clinician.post(
        correct_url + "?lang=en",
        data={"value": "13,5", "measured_on": DAY.isoformat(), "reason": "", "csrf_token": token},
    )
    assert no_reason.status_code == 422 and "A value is required." in no_reason.get_data(
        as_text=True
    )
    unchanged = clinician.post(
        correct_url + "?lang=en",
        data={"value": "12.5", "measured_on": DAY.isoformat(), "reason": "x", "csrf_token": token},
    )
    assert "same as the stored one" in unchanged.get_data(as_text=True)
    out_of_range = clinician.post(
        correct_url + "?lang=en",
        data={"value": "99", "measured_on": DAY.isoformat(), "reason": "x", "csrf_token": token},
    )
    assert out_of_range.status_code == 422
    assert len(stored()) == 1

    done = clinician.post(
        correct_url,
        data={
            "value": "13,5",
            "measured_on": DAY.isoformat(),
            "reason": "Kirjoitusvirhe",
            "csrf_token": token,
        },
    )
    assert done.status_code == 302
    old, new = stored()
    db.session.refresh(old)
    assert old.value_num == 12.5 and new.value_num == 13.5
    assert old.superseded_by_id == new.id and old.superseded_at is not None
    assert old.correction_reason == "Kirjoitusvirhe"
    assert new.superseded_by_id is None
    history = clinician.get(url(patient) + "?lang=en").get_data(as_text=True)
    assert "<del>12.5</del>" in history and "Kirjoitusvirhe" in history and "13.5" in history
    # a superseded value cannot be corrected again
    again = clinician.get(correct_url)
    assert again.status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "correct_measurement"))
    assert event is not None and event.details["replaces"] == old.id


def test_posting_without_csrf_token_is_refused(clinician: FlaskClient, patient: Any) -> None:
    response = clinician.post(url(patient), data={"measure": "qmax", "value": "10"})
    assert response.status_code == 400
    assert stored() == []


def test_viewing_is_audited(clinician: FlaskClient, patient: Any) -> None:
    assert clinician.get(url(patient)).status_code == 200
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "view_measurements"))
    assert event is not None and event.person_id == patient.person_id


def test_the_patient_page_links_to_the_measurements(clinician: FlaskClient, patient: Any) -> None:
    page = clinician.get(f"/clinician/bph/{patient.person.pseudonym}").get_data(as_text=True)
    assert url(patient) in page


@pytest.mark.parametrize("role", ["management", "admin"])
def test_other_roles_get_403(client: FlaskClient, make_user: Any, patient: Any, role: str) -> None:
    make_user("someone", role)
    login(client, "someone")
    assert client.get(url(patient)).status_code == 403
    assert client.post(url(patient), data={}).status_code == 403


def test_staff_of_another_pilot_get_403(client: FlaskClient, make_user: Any, patient: Any) -> None:
    make_user("elsewhere", "clinician", pilots=("older-adults",))
    login(client, "elsewhere")
    assert client.get(url(patient)).status_code == 403
    token = csrf_token(client, "/auth/password")
    data = {"measure": "qmax", "value": "10", "measured_on": DAY.isoformat(), "csrf_token": token}
    assert client.post(url(patient), data=data).status_code == 403
    assert stored() == []


def test_a_pilot_lead_may_enter_measurements(
    client: FlaskClient, make_user: Any, patient: Any
) -> None:
    make_user("lead", "pilot_lead", pilots=("bph",))
    login(client, "lead")
    assert post_measurement(client, patient, measure="reoperation", value="ei").status_code == 302
    [measurement] = stored()
    assert measurement.value_num == 0.0 and measurement.unit is None
