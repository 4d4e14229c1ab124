"""Shared fixtures.

Database-backed tests run on every backend in ``VAIKUTTAVUUS_TEST_BACKENDS`` (default: both
SQLite and PostgreSQL). A migrated database with the definitions loaded is built once per
backend and copied for each test (SQLite: file copy; PostgreSQL: ``CREATE DATABASE …
TEMPLATE``), so tests can commit freely. PostgreSQL is a real throwaway server started from
Debian's binaries; if it cannot start, the tests fail rather than skip.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import postgres
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus import create_app
from vaikuttavuus.extensions import db, limiter

# The app's "today" is the county's day (``vaikuttavuus.county_time``), not the server's; a test's
# ``date.today()`` must be the same day even when the suite runs between 22 and 24 UTC.
os.environ["TZ"] = "Europe/Helsinki"
time.tzset()

BACKENDS = [
    b.strip()
    for b in os.environ.get("VAIKUTTAVUUS_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]
PASSWORD = "Testi-Salasana-2026"
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FORM_TOKEN_FIELD = re.compile(r'name="form_token"[^>]*value="([^"]+)"')


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``one_backend`` run on the first backend only (the rest are deselected)."""
    kept, dropped = [], []
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("db_template")
        if backend and item.get_closest_marker("one_backend") and backend != BACKENDS[0]:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def test_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "IGNORE_INSTANCE_CONFIG": True,
        "SECRET_KEY": "test-secret-key",
        "PSEUDONYM_KEY": "test-pseudonym-key",
        "DATABASE_URL": database_url,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8192,
        "PUBLIC_BASE_URL": "http://localhost",
        "SERVER_NAME": None,
        # fewer replicates and imputed data sets keep the report tests fast; the analyses'
        # own tests and the simulation use their own numbers
        "REPORT_BOOTSTRAP": 400,
        "REPORT_IMPUTATIONS": 4,
        # analysis snapshots are built at once, in the request that asks for them
        "JOB_QUEUE_URL": "immediate",
        # every data version read is checked against the full fingerprint of the data
        "DATA_VERSION_AUDIT": True,
    }
    config.update(overrides)
    return config


def _prepare(app: Flask) -> None:
    from vaikuttavuus.database import upgrade_schema
    from vaikuttavuus.services.definitions import sync_definitions

    with app.app_context():
        upgrade_schema()
        sync_definitions(db.session)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.PostgresServer]:
    server = postgres.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def db_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    backend = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        _prepare(create_app(test_config(f"sqlite:///{path}")))
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return ("sqlite", path)
    if backend == "postgresql":
        server: postgres.PostgresServer = request.getfixturevalue("pg_server")
        name = f"template_{uuid.uuid4().hex[:8]}"
        server.psql(f"CREATE DATABASE {name}")
        _prepare(create_app(test_config(server.url(name))))
        return ("postgresql", server, name)
    raise ValueError(f"unknown backend {backend}")


@pytest.fixture
def database_url(db_template: Any, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database with the definitions loaded, on the current backend."""
    if db_template[0] == "sqlite":
        target = tmp_path / "test.sqlite3"
        shutil.copyfile(db_template[1], target)
        yield f"sqlite:///{target}"
        return
    _kind, server, template = db_template
    name = f"test_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield server.url(name)
    finally:
        server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    app = create_app(test_config(database_url))
    # The app context below outlives each request; give every request a fresh ``g`` anyway.
    fresh_globals_per_request(app)
    limiter.reset()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def backend(db_template: Any) -> str:
    return str(db_template[0])


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


# -- helpers for tests --------------------------------------------------------------------------


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    match = CSRF_FIELD.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {page.status_code})"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client, "/auth/login")
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture
def make_user(app: Flask) -> Any:
    from vaikuttavuus.services.users import create_user

    def make(username: str, role: str, pilots: tuple[str, ...] = ("bph", "older-adults")) -> Any:
        user = create_user(db.session, username=username, password=PASSWORD, role=role,
                           pilot_codes=pilots if role in ("clinician", "pilot_lead") else ())
        db.session.commit()
        return user

    return make


@pytest.fixture
def enrol_patient(app: Flask) -> Any:
    """Enrol a synthetic person through the public services; returns the enrolment."""
    from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol

    counter = {"n": 0}

    def make(
        pilot: str = "bph",
        arm: str = "operating_room",
        index_offset_days: int = 0,
        **person: Any,
    ) -> Any:
        counter["n"] += 1
        defaults = {
            "first_name": "Testi",
            "last_name": f"Potilas{counter['n']}",
            "birth_year": 1955,
            "sex": "male" if pilot == "bph" else "female",
        }
        defaults.update(person)
        created = add_person(db.session, NewPerson(**defaults))
        enrolment = enrol(
            db.session,
            created,
            pilot_code=pilot,
            arm_code=arm,
            index_date=date.today() + timedelta(days=index_offset_days),
        )
        db.session.commit()
        return enrolment

    return make


@pytest.fixture
def patient_link(app: Flask) -> Any:
    """A personal link token for an enrolment's time point."""
    from sqlalchemy import select

    from vaikuttavuus.models import Invitation, TimePoint
    from vaikuttavuus.services.patient_flow import issue_token

    def make(enrolment: Any, time_point: str = "baseline") -> str:
        invitation = db.session.scalar(
            select(Invitation)
            .join(TimePoint, Invitation.time_point_id == TimePoint.id)
            .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == time_point)
        )
        assert invitation is not None
        token = issue_token(db.session, invitation)
        db.session.commit()
        return token

    return make
