"""A database with the synthetic data set of both pilots, built once per test module and
backend and copied for each test (the cohort analytics, cohort pages, management and report
CLI tests read realistic data without generating and loading it every time)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import test_config
from vaikuttavuus import create_app, synthetic
from vaikuttavuus.extensions import db, limiter

TODAY = date.today()
PEOPLE = 300
SEED = 11


def generate(people: int = PEOPLE, seed: int = SEED) -> synthetic.SyntheticData:
    from vaikuttavuus.services.definitions import load_all_definitions

    instruments, pilots, measures = load_all_definitions()
    return synthetic.generate(
        pilots={spec.id: spec for spec in pilots},
        instruments={spec.id: spec for spec in instruments},
        measures=measures,
        people=people,
        seed=seed,
        today=TODAY,
        pseudonym_key=b"test-pseudonym-key",
    )


def _load(url: str, data: synthetic.SyntheticData) -> None:
    from vaikuttavuus.services.demo_data import load_demo_data

    app = create_app(test_config(url))
    with app.app_context():
        load_demo_data(db.session, data)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _template(
    db_template: Any, tmp_path_factory: pytest.TempPathFactory, people: int
) -> Iterator[tuple[Any, ...]]:
    data = generate(people)
    if db_template[0] == "sqlite":
        target = tmp_path_factory.mktemp("cohort") / "cohort.sqlite3"
        shutil.copyfile(db_template[1], target)
        _load(f"sqlite:///{target}", data)
        with sqlite3.connect(target) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield ("sqlite", target)
        return
    _kind, server, template = db_template
    name = f"cohort_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE {template}")
    _load(server.url(name), data)
    try:
        yield ("postgresql", server, name)
    finally:
        server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _app(template: tuple[Any, ...], tmp_path: Path) -> Iterator[Flask]:
    if template[0] == "sqlite":
        target = tmp_path / "test.sqlite3"
        shutil.copyfile(template[1], target)
        url = f"sqlite:///{target}"
        cleanup = None
    else:
        _kind, server, name_of_template = template
        name = f"test_{uuid.uuid4().hex[:12]}"
        server.psql(f"CREATE DATABASE {name} TEMPLATE {name_of_template}")
        url = server.url(name)
        cleanup = (server, name)
    app = create_app(test_config(url))
    limiter.reset()
    try:
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        if cleanup is not None:
            server, name = cleanup
            server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def cohort_template(
    db_template: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, ...]]:
    """The migrated test database with the synthetic data loaded (once per module)."""
    yield from _template(db_template, tmp_path_factory, PEOPLE)


@pytest.fixture
def cohort_app(cohort_template: tuple[Any, ...], tmp_path: Path) -> Iterator[Flask]:
    """An app on a fresh copy of the loaded database, inside an app context."""
    yield from _app(cohort_template, tmp_path)


MANAGEMENT_PEOPLE = 900
"""The demo's size: enough persons per quarter and arm for the management summary's grid
rule to show the primary analysis of a year (the 300 of the other tests are too few)."""


@pytest.fixture(scope="module")
def management_template(
    db_template: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, ...]]:
    """The synthetic data set at the demo's size (once per module)."""
    yield from _template(db_template, tmp_path_factory, MANAGEMENT_PEOPLE)


@pytest.fixture
def management_app(management_template: tuple[Any, ...], tmp_path: Path) -> Iterator[Flask]:
    """An app on a fresh copy of the demo-sized data set, inside an app context."""
    yield from _app(management_template, tmp_path)
