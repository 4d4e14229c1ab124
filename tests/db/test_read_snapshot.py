"""``read_snapshot``: every read of a block sees one moment of the database (REPEATABLE READ on
PostgreSQL, one read transaction on SQLite), a submit committed meanwhile by another
connection is invisible until the block ends, the writer is not blocked, writes inside are
refused, and the data version moves with the data."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.support.answering import answer_and_submit
from vaikuttavuus import queries
from vaikuttavuus.change_log import latest_change
from vaikuttavuus.database import SnapshotError, current_snapshot, read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Pilot, Response


def _submitted() -> int:
    statement = select(func.count()).select_from(Response).where(Response.status == "submitted")
    return int(db.session.scalar(statement) or 0)


def _bph() -> Pilot:
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    return pilot


def _submit_elsewhere(app: Flask, token: str, seed: int) -> None:
    """Answer and submit a link through another session and connection (another app
    context), committed while the test's snapshot is open."""
    with app.app_context():
        answer_and_submit(db.session, token, seed=seed)
        db.session.remove()


def test_a_snapshot_does_not_see_what_is_committed_meanwhile(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    first = enrol_patient(index_offset_days=10)
    answer_and_submit(db.session, patient_link(first), seed=1)
    later = patient_link(enrol_patient(index_offset_days=10))
    pilot = _bph()
    with read_snapshot() as snapshot:
        assert current_snapshot() is snapshot
        before = _submitted()
        scores = queries.cohort_scores(db.session, pilot.id, ["ipss", "eq5d5l"])
        version = snapshot.data_version(pilot.id)
        _submit_elsewhere(app, later, seed=2)  # the writer is not blocked by the snapshot
        assert _submitted() == before
        again = queries.cohort_scores(db.session, pilot.id, ["ipss", "eq5d5l"])
        assert {k: len(v) for k, v in again.items()} == {k: len(v) for k, v in scores.items()}
        assert latest_change(db.session, pilot.id) == version.fingerprint
        with read_snapshot() as nested:  # joins the open snapshot
            assert nested is snapshot
            assert _submitted() == before
    assert current_snapshot() is None
    assert _submitted() == before + 2  # IPSS and EQ-5D-5L of the second patient
    with read_snapshot() as snapshot:
        newer = snapshot.data_version(pilot.id)
    assert newer.fingerprint != version.fingerprint and newer.label != version.label
    with read_snapshot() as snapshot:
        assert snapshot.data_version(pilot.id).fingerprint == newer.fingerprint


def test_writes_inside_a_snapshot_are_refused_and_objects_stay_usable(
    app: Flask, enrol_patient: Any
) -> None:
    enrolment = enrol_patient()
    pilot = _bph()
    db.session.add(AuditEvent(actor="test", action="pending"))
    with pytest.raises(SnapshotError), read_snapshot():
        pass  # unsaved changes: refused before anything is read
    db.session.rollback()
    refused = r"(?i)read-only|readonly|query_only|attempt to write"
    with pytest.raises(Exception, match=refused), read_snapshot():
        db.session.add(AuditEvent(actor="test", action="inside"))
        db.session.flush()
    db.session.rollback()
    with read_snapshot():
        code = pilot.code  # loaded before the snapshot: still usable, no reload needed
    assert code == "bph" and enrolment.pilot_id == pilot.id
    db.session.add(AuditEvent(actor="test", action="after"))  # writing works again after it
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "after")) == 1
