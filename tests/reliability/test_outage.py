"""PostgreSQL stops in the middle of a load of patient submits and staff page views, and starts
again: while it is down every request answers 503 with ``Retry-After`` and the page that says
to try again in a minute (patients: saved answers are kept) — never a 500 — and ``/healthz``
says the database is unavailable; once it is back the same server (no restart) answers again
by itself, every patient's retried submit is stored exactly once and nothing is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import _prepare
from tests.conftest import test_config as make_config
from tests.reliability.conftest import Server, record_figures, scaled
from tests.reliability.load import FORM_TOKEN
from tests.reliability.test_snapshot_under_load import staff_session
from tests.support import postgres
from vaikuttavuus import create_app
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Invitation, Response

PATIENT_TEXT = "Jo tallentamasi vastaukset ovat tallessa"
STAFF_TEXT = "Yritä uudelleen minuutin kuluttua"
OUTAGE_SECONDS = 4.0


@pytest.fixture
def own_postgres() -> Iterator[postgres.PostgresServer]:
    """A PostgreSQL server of this test alone (the shared one must not be stopped)."""
    server = postgres.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def outage_app(own_postgres: postgres.PostgresServer) -> Iterator[Flask]:
    own_postgres.psql("CREATE DATABASE outage")
    url = own_postgres.url("outage")
    _prepare(create_app(make_config(url)))
    app = create_app(make_config(url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _prepared_links(count: int) -> list[str]:
    from tests.conftest import PASSWORD
    from tests.reliability.test_snapshot_under_load import answered_link
    from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol
    from vaikuttavuus.services.patient_flow import issue_token
    from vaikuttavuus.services.users import create_user

    create_user(db.session, username="kliinikko", password=PASSWORD, role="clinician",
                pilot_codes=("bph",))  # fmt: skip
    db.session.commit()
    counter = iter(range(10**6))

    def enrol_patient(pilot: str = "bph", index_offset_days: int = 0) -> Any:
        from datetime import date, timedelta

        person = add_person(
            db.session, NewPerson(first_name="Katko", last_name=f"T{next(counter)}")
        )
        enrolment = enrol(db.session, person, pilot_code=pilot, arm_code="operating_room",
                          index_date=date.today() + timedelta(days=index_offset_days))  # fmt: skip
        db.session.commit()
        return enrolment

    def patient_link(enrolment: Any, time_point: str = "baseline") -> str:
        from vaikuttavuus.models import TimePoint

        invitation = db.session.scalar(
            select(Invitation)
            .join(TimePoint, Invitation.time_point_id == TimePoint.id)
            .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == time_point)
        )
        token = issue_token(db.session, invitation)
        db.session.commit()
        return token

    return [answered_link(enrol_patient, patient_link, n) for n in range(count)]


@pytest.mark.slow
def test_postgresql_outage_gives_503_and_the_app_recovers_by_itself(
    outage_app: Flask, own_postgres: postgres.PostgresServer, tmp_path: Path
) -> None:
    links = _prepared_links(scaled(30))
    db.session.remove()
    instance = tmp_path / "instance"
    instance.mkdir()
    server = Server(
        database_url=own_postgres.url("outage"), instance=instance, log=tmp_path / "server.log"
    )
    server.start()
    try:
        figures = _run_outage(server, own_postgres, links)
    finally:
        server.stop()
    db.session.expire_all()
    completed = db.session.scalar(
        select(func.count()).select_from(Invitation).where(Invitation.status == "completed")
    )
    submitted = db.session.scalar(
        select(func.count()).select_from(Response).where(Response.status == "submitted")
    )
    assert completed == len(links)  # every patient got through, once
    assert submitted == 2 * len(links)  # IPSS and EQ-5D-5L, none duplicated
    record_figures("postgresql_outage", "postgresql", figures)


def _run_outage(
    server: Server, database: postgres.PostgresServer, links: list[str]
) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()
    down = threading.Event()
    stop = threading.Event()
    acknowledged: set[str] = set()

    def note(kind: str, answer: requests.Response, text: str) -> None:
        with lock:
            statuses[f"{kind} {answer.status_code}"] += 1
            if answer.status_code >= 500 and answer.status_code != 503:
                problems.append(f"{kind}: {answer.status_code}")
            if answer.status_code == 503 and (
                answer.headers.get("Retry-After") != "60" or text not in answer.text
            ):
                problems.append(f"{kind}: 503 without Retry-After or its page")

    def patient(token: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            review = requests.get(f"{server.url}/r/{token}/review", timeout=30)
            note("patient page", review, PATIENT_TEXT)
            match = FORM_TOKEN.search(review.text)
            if review.status_code == 200 and match:
                sent = requests.post(
                    f"{server.url}/r/{token}/submit",
                    data={"form_token": match.group(1)},
                    allow_redirects=False,
                    timeout=30,
                )
                note("patient submit", sent, PATIENT_TEXT)
                if sent.status_code == 302 and "/thanks" in sent.headers.get("Location", ""):
                    with lock:
                        acknowledged.add(token)
                    return
            time.sleep(0.3)  # "try again in a minute": sooner here
        with lock:
            problems.append("a patient never got through")

    session = staff_session(server.url, "kliinikko")  # logged in before the load starts

    def staff() -> None:
        while not stop.is_set():
            page = session.get(f"{server.url}/clinician/bph/", timeout=30)
            note("staff page", page, STAFF_TEXT)
            time.sleep(0.1)

    health: list[tuple[float, int]] = []

    def monitor() -> None:
        while not stop.is_set():
            try:
                answer = requests.get(f"{server.url}/healthz", timeout=15)
            except requests.RequestException as error:
                with lock:
                    problems.append(f"healthz: {type(error).__name__}")
                continue
            with lock:
                health.append((time.monotonic(), answer.status_code))
                if answer.status_code == 503 and (answer.json()["checks"]["database"]["status"]
                                                  != "unavailable"):  # fmt: skip
                    problems.append("healthz 503 without naming the database")
            time.sleep(0.1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        background = [pool.submit(staff), pool.submit(monitor)]
        first, rest = links[: len(links) // 3], links[len(links) // 3 :]
        list(pool.map(patient, first))
        database.halt()
        halted = time.monotonic()
        down.set()
        during = [pool.submit(patient, token) for token in rest]
        time.sleep(OUTAGE_SECONDS)
        database.resume()
        resumed = time.monotonic()
        for future in during:
            future.result()
        time.sleep(0.5)
        stop.set()
        for future in background:
            future.result()

    assert problems == [], problems[:20]
    assert acknowledged == set(links)
    assert statuses["patient submit 503"] + statuses["patient page 503"] > 0
    assert statuses["staff page 503"] > 0
    assert not [code for code in statuses if code.endswith(" 500")]
    unavailable = [at for at, code in health if halted < at < resumed and code == 503]
    assert unavailable, "healthz did not report the outage"
    recovered = min(at for at, code in health if at > resumed and code == 200)
    return {
        "patients": len(links),
        "statuses": dict(sorted(statuses.items())),
        "outage_seconds": round(resumed - halted, 1),
        "healthz_ok_after_restart_seconds": round(recovered - resumed, 2),
    }
