"""Outages of a dependency give a 503 with ``Retry-After`` and a page in the user's language
(patients: what they saved is kept), never a 500; ``/healthz`` reports each dependency.

The database is made unavailable for real: a PostgreSQL address where nothing listens, and a
SQLite database whose write lock another process holds longer than the busy timeout. The
server-level test (PostgreSQL stopped and restarted under load) is
``tests/reliability/test_outage.py``."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import FORM_TOKEN_FIELD
from tests.conftest import test_config as make_config
from tests.support.isolation import fresh_globals_per_request
from tests.support.postgres import free_port
from tests.support.staff import staff_login
from vaikuttavuus import create_app, health
from vaikuttavuus.extensions import db, limiter
from vaikuttavuus.models import Answer

PATIENT_TEXTS = {
    "fi": "Jo tallentamasi vastaukset ovat tallessa",
    "sv": "De svar som du redan har sparat finns kvar",
    "en": "The answers you have already saved are kept",
}
STAFF_TEXTS = {
    "fi": "Yritä uudelleen minuutin kuluttua",
    "sv": "Försök igen om en minut",
    "en": "Please try again in a minute",
}


def _assert_unavailable(response: Any, text: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 503, html[:500]
    assert response.headers["Retry-After"] == "60"
    assert text in html
    assert "Traceback" not in html and "OperationalError" not in html


@pytest.fixture
def unreachable() -> Iterator[Flask]:
    """The app configured for a PostgreSQL server that is not there (port closed)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/vaikuttavuus"
    app = create_app(make_config(url))
    fresh_globals_per_request(app)
    limiter.reset()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_database_down_gives_503_in_the_users_language(unreachable: Flask) -> None:
    client = unreachable.test_client()
    health_answer = client.get("/healthz")
    assert health_answer.status_code == 503 and health_answer.headers["Retry-After"] == "60"
    assert health_answer.json is not None
    assert health_answer.json["status"] == "unavailable"
    assert health_answer.json["checks"]["database"]["status"] == "unavailable"
    for language in ("fi", "sv", "en"):
        _assert_unavailable(client.get(f"/r/some-link-token/1?lang={language}"),
                            PATIENT_TEXTS[language])  # fmt: skip
    page = client.get("/auth/login?lang=sv")  # remembers Swedish in the session
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    answer = client.post(
        "/auth/login",
        data={"username": "kuka", "password": "Salasana-123456", "csrf_token": token.group(1)},
    )
    _assert_unavailable(answer, STAFF_TEXTS["sv"])
    assert "Det som du just skickade sparades inte" in answer.get_data(as_text=True)
    english = client.get("/healthz", headers={"Accept-Language": "en"})
    assert english.status_code == 503


def test_healthz_reports_each_dependency(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json is not None
    assert answer.json["status"] == "ok"
    assert answer.json["checks"]["database"]["status"] == "ok"

    def queue_down() -> None:
        raise health.DependencyUnavailableError("job_queue", "connection refused")

    monkeypatch.setitem(health._CHECKS, "job_queue", queue_down)
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "60"
    assert answer.json is not None
    assert answer.json["checks"]["database"]["status"] == "ok"
    assert answer.json["checks"]["job_queue"]["status"] == "unavailable"
    assert "connection refused" in answer.json["checks"]["job_queue"]["error"]


def _page_data(html: str) -> dict[str, str]:
    token = FORM_TOKEN_FIELD.search(html)
    assert token is not None
    data = {"form_token": token.group(1), "direction": "next"}
    for name in set(re.findall(r'name="([a-z][a-z0-9_]*)"', html)) - set(data):
        option = re.search(rf'name="{name}"[^>]*value="([^"]+)"', html)
        data[name] = option.group(1) if option else "3"
    return data


@pytest.mark.one_backend
def test_sqlite_locked_beyond_the_busy_timeout_gives_503_and_keeps_saved_answers(
    database_url: str, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    from tests.conftest import PASSWORD
    from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol
    from vaikuttavuus.services.users import create_user

    app = create_app(make_config(database_url, SQLITE_BUSY_TIMEOUT=0.3))
    fresh_globals_per_request(app)
    limiter.reset()
    with app.app_context():
        person = add_person(db.session, NewPerson(first_name="Lukko", last_name="Testi"))
        enrolment = enrol(db.session, person, pilot_code="bph", arm_code="operating_room",
                          index_date=date.today() + timedelta(days=10))  # fmt: skip
        create_user(db.session, username="kliinikko", password=PASSWORD, role="clinician",
                    pilot_codes=("bph",))  # fmt: skip
        db.session.commit()
        pseudonym = person.pseudonym
        token = _link(enrolment)
        patient = app.test_client()
        first = patient.get(f"/r/{token}/1?lang=en")
        assert (
            patient.post(f"/r/{token}/1", data=_page_data(first.get_data(as_text=True))).status_code
            == 302
        )
        second = patient.get(f"/r/{token}/2").get_data(as_text=True)
        saved = db.session.scalar(select(func.count()).select_from(Answer))
        assert saved
        staff = app.test_client()
        staff_login(staff, "kliinikko")
        db.session.remove()

        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock, too long
        try:
            locked = patient.post(f"/r/{token}/2", data=_page_data(second))
            _assert_unavailable(locked, PATIENT_TEXTS["en"])
            assert "were not saved yet" in locked.get_data(as_text=True)
            # A staff page view writes its audit event at the end: refused as a whole.
            viewed = staff.get(f"/clinician/bph/{pseudonym}")
            _assert_unavailable(viewed, STAFF_TEXTS["fi"])
        finally:
            holder.rollback()
            holder.close()
        assert db.session.scalar(select(func.count()).select_from(Answer)) == saved  # kept
        again = patient.post(f"/r/{token}/2", data=_page_data(second))
        assert again.status_code == 302  # once the lock is gone the same page is saved
        assert db.session.scalar(select(func.count()).select_from(Answer)) > saved
        assert staff.get(f"/clinician/bph/{pseudonym}").status_code == 200
        db.session.remove()
        db.engine.dispose()


def _link(enrolment: Any) -> str:
    from vaikuttavuus.models import Invitation, TimePoint
    from vaikuttavuus.services.patient_flow import issue_token

    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    token = issue_token(db.session, invitation)
    db.session.commit()
    return token
