"""``vaikuttavuus backup`` and ``restore``: round trips on SQLite and PostgreSQL (row counts and
checksums of every table equal before and after), a consistent SQLite copy while the app
writes, key-fingerprint warnings and refusal of damaged files."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select, text

from tests.conftest import test_config as make_config
from tests.support.answering import answer_and_submit
from tests.support.crawl import snapshot
from vaikuttavuus import create_app
from vaikuttavuus.cli.backup import backup_command, restore_command, sidecar_path
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, AuditEvent, Person
from vaikuttavuus.security.tokens import key_fingerprint
from vaikuttavuus.services import audit

KEY_TABLES = ("people", "enrolments", "invitations", "access_tokens", "responses", "answers",
              "users", "audit_events")  # fmt: skip


@pytest.fixture
def populated(app: Flask, enrol_patient: Any, patient_link: Any, make_user: Any) -> Flask:
    make_user("varmuus", "admin")
    for n in range(4):
        enrolment = enrol_patient(index_offset_days=10, first_name="Åsa", last_name=f"Öberg{n}")
        answer_and_submit(db.session, patient_link(enrolment), seed=n)
    with app.test_request_context():
        audit.record("view_patient", person_id=1, details={"ä": "ö", "n": [1, 2]})
    db.session.commit()
    return app


def _state() -> dict[str, str]:
    """Every table's rows as a digest, audit events of backups and restores left out."""
    db.session.expire_all()
    digests = snapshot(db.session, skip_tables=frozenset({"audit_events"}))
    rows = db.session.execute(
        select(AuditEvent.id, AuditEvent.action, AuditEvent.details)
        .where(AuditEvent.action.not_in(("backup_database", "restore_database")))
        .order_by(AuditEvent.id)
    ).all()
    digests["audit_events"] = repr([tuple(r) for r in rows])
    return digests


def _invoke(app: Flask, command: Any, *args: str, **kwargs: Any) -> Any:
    return app.test_cli_runner().invoke(command, list(args), **kwargs)


def _change_everything() -> None:
    db.session.execute(delete(Answer).where(Answer.id % 2 == 0))
    person = db.session.scalar(select(Person))
    assert person is not None
    person.last_name = "Muutettu"
    db.session.add(Person(pseudonym="P-LATER1"))
    db.session.commit()


def test_round_trip(populated: Flask, tmp_path: Path, backend: str) -> None:
    before = _state()
    assert all(int(before[t].split(":")[1]) > 0 for t in KEY_TABLES if t != "audit_events")
    out = tmp_path / "backups" / "vaikuttavuus.backup"
    result = _invoke(populated, backup_command, "--out", str(out))
    assert result.exit_code == 0, result.output
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["backend"] == backend
    assert meta["row_counts"]["answers"] == int(before["answers"].split(":")[1])
    assert meta["key_fingerprints"]["pseudonym_key"] == key_fingerprint("test-pseudonym-key")
    assert "test-pseudonym-key" not in sidecar_path(out).read_text()
    assert "test-secret-key" not in sidecar_path(out).read_text()
    assert meta["schema_revision"]

    _change_everything()
    assert _state() != before
    result = _invoke(populated, restore_command, str(out), "--yes")
    assert result.exit_code == 0, result.output
    assert _state() == before
    assert out.stat().st_mode & 0o777 == 0o600
    if backend == "sqlite":  # the restored file is readable by its owner only, like a new one
        database = Path(populated.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
        assert database.stat().st_mode & 0o777 == 0o600
    # The restored database is usable and its audit trail still append-only.
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-1] == "restore_database"
    with pytest.raises(Exception, match="append-only"):
        db.session.execute(text("DELETE FROM audit_events"))
        db.session.commit()
    db.session.rollback()


def test_restore_asks_and_warns_about_another_pseudonym_key(
    populated: Flask, tmp_path: Path, database_url: str
) -> None:
    out = tmp_path / "b.backup"
    assert _invoke(populated, backup_command, "--out", str(out)).exit_code == 0
    before = _state()
    _change_everything()
    changed = _state()
    db.session.remove()
    db.engine.dispose()  # the first instance is stopped

    other = create_app(make_config(database_url, PSEUDONYM_KEY="another-instance-key"))
    with other.app_context():
        declined = _invoke(other, restore_command, str(out), input="n\n")
        assert declined.exit_code != 0
        assert "another PSEUDONYM_KEY" in declined.output
        assert "Stop the app first" in declined.output
        assert _state() == changed  # nothing restored
        accepted = _invoke(other, restore_command, str(out), input="y\n")
        assert accepted.exit_code == 0, accepted.output
        assert _state() == before
        db.session.remove()
        db.engine.dispose()


def test_damaged_or_foreign_backups_are_refused(populated: Flask, tmp_path: Path) -> None:
    out = tmp_path / "b.backup"
    assert _invoke(populated, backup_command, "--out", str(out)).exit_code == 0
    assert _invoke(populated, backup_command, "--out", str(out)).exit_code != 0  # no overwrite
    before = _state()
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    result = _invoke(populated, restore_command, str(out), "--yes")
    assert result.exit_code != 0 and "SHA-256" in result.output
    sidecar_path(out).unlink()
    result = _invoke(populated, restore_command, str(out), "--yes")
    assert result.exit_code != 0
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    assert _invoke(populated, restore_command, str(junk), "--yes").exit_code != 0
    assert _state() == before


def test_sqlite_backup_is_consistent_while_the_app_writes(
    populated: Flask, tmp_path: Path, backend: str, database_url: str
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL: pg_dump takes one snapshot by design")
    path = database_url.removeprefix("sqlite:///")
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE pairs (n INTEGER, half INTEGER)")
    setup.commit()
    setup.close()
    stop = threading.Event()
    written = {"transactions": 0}

    def writer() -> None:
        connection = sqlite3.connect(path, timeout=30)
        n = 0
        while not stop.is_set():
            with connection:  # one transaction: two rows that belong together
                connection.execute("INSERT INTO pairs VALUES (?, 1)", (n,))
                connection.execute("INSERT INTO pairs VALUES (?, 2)", (n,))
            n += 1
            written["transactions"] = n
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written["transactions"] < 50:
            stop.wait(0.01)
        out = tmp_path / "live.backup"
        result = _invoke(populated, backup_command, "--out", str(out))
        assert result.exit_code == 0, result.output
    finally:
        stop.set()
        thread.join()
    copy = sqlite3.connect(out)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = copy.execute("SELECT COUNT(*), COUNT(DISTINCT n) FROM pairs").fetchone()
    copy.close()
    assert rows[0] == 2 * rows[1] > 0  # whole transactions only
    assert rows[1] <= written["transactions"]


def test_sqlite_restore_refuses_a_database_in_use(
    populated: Flask, tmp_path: Path, backend: str, database_url: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only: the file is replaced")
    out = tmp_path / "b.backup"
    assert _invoke(populated, backup_command, "--out", str(out)).exit_code == 0
    _change_everything()
    changed = _state()
    app_still_running = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    app_still_running.execute("SELECT COUNT(*) FROM people").fetchone()
    try:
        result = _invoke(populated, restore_command, str(out), "--yes")
    finally:
        app_still_running.close()
    assert result.exit_code != 0 and "stop the app first" in result.output
    assert _state() == changed


def _contents(out: Path, backend: str, db_template: Any) -> dict[str, int]:
    """Rows per table of what a backup file holds (PostgreSQL: restored into a new
    database)."""
    if backend == "sqlite":
        copy = sqlite3.connect(out)
        try:
            listing = (
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
            names = [row[0] for row in copy.execute(listing)]
            return {n: copy.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        finally:
            copy.close()
    import subprocess
    import uuid

    from sqlalchemy import create_engine, func, inspect, table
    from sqlalchemy.engine import make_url

    from vaikuttavuus.cli.backup import _libpq_environment, client_program

    _kind, server, _template = db_template
    name = f"restored_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE DATABASE {name}")
    url = make_url(server.url(name))
    pg_restore = client_program("pg_restore", int(server.bin_dir.parent.name))
    subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "--dbname", name, str(out)],
                   env=_libpq_environment(url), check=True, capture_output=True)  # fmt: skip
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                t: int(connection.scalar(select(func.count()).select_from(table(t))) or 0)
                for t in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()
        server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_sidecar_counts_what_the_backup_holds_while_the_app_writes(
    populated: Flask, tmp_path: Path, backend: str, database_url: str, db_template: Any
) -> None:
    from sqlalchemy import create_engine

    from vaikuttavuus import normalise_database_url

    engine = create_engine(normalise_database_url(database_url))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE pairs (n INTEGER, half INTEGER)")
    stop = threading.Event()
    written = {"transactions": 0}

    def writer() -> None:  # the app keeps writing during the backup
        n = 0
        while not stop.is_set():
            with engine.begin() as connection:
                connection.exec_driver_sql(f"INSERT INTO pairs VALUES ({n}, 1), ({n}, 2)")
            n += 1
            written["transactions"] = n

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written["transactions"] < 20:
            stop.wait(0.01)
        out = tmp_path / "busy.backup"
        result = _invoke(populated, backup_command, "--out", str(out))
        assert result.exit_code == 0, result.output
        after_backup = written["transactions"]
        while written["transactions"] < after_backup + 5:
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
        engine.dispose()
    meta = json.loads(sidecar_path(out).read_text())
    contents = _contents(out, backend, db_template)
    assert meta["row_counts"] == contents  # exactly what the file holds
    assert 0 < contents["pairs"] < 2 * written["transactions"]  # writes went on around it
    assert contents["pairs"] % 2 == 0
    assert meta["schema_revision"]
