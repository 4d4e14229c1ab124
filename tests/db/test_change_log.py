"""The data change log (:mod:`vaikuttavuus.change_log`): a pilot's data version moves with
every committed change of what its analyses read, stays put for drafts, rolled-back work and
statements that changed nothing, is attributed to the pilot a patient's submit or an import
belongs to, and survives pruning. The audit (on in the whole suite) names a write that
changes the data without moving the version."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from tests.support.answering import answer_and_submit
from vaikuttavuus import change_log, queries
from vaikuttavuus.bulk import bulk_insert
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import DataVersionAuditError, read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.models import CostItem, DataChange, Invitation
from vaikuttavuus.services import schedule


def _version(code: str) -> tuple[object, ...]:
    pilot = queries.pilot_by_code(db.session, code)
    assert pilot is not None
    with read_snapshot() as snapshot:
        return snapshot.data_version(pilot.id).fingerprint


def _rows() -> int:
    return int(db.session.scalar(select(func.count()).select_from(DataChange)) or 0)


def test_a_submit_moves_its_pilot_only_and_a_draft_moves_nothing(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    enrol_patient(pilot="older-adults", arm="outreach")
    token = patient_link(enrol_patient())
    answer_and_submit(db.session, token, seed=1, submit=False)  # opens, starts: a change
    bph, older = _version("bph"), _version("older-adults")
    answer_and_submit(db.session, token, seed=2, submit=False)  # draft answers only
    assert (_version("bph"), _version("older-adults")) == (bph, older)
    answer_and_submit(db.session, token, seed=3)
    assert _version("bph") != bph
    assert _version("older-adults") == older


def test_rolled_back_and_empty_writes_leave_no_row(app: Flask, enrol_patient: Any) -> None:
    enrolment = enrol_patient()
    before, rows = _version("bph"), _rows()
    db.session.execute(
        update(Invitation).where(Invitation.enrolment_id == enrolment.id).values(status="expired")
    )
    db.session.rollback()
    db.session.execute(update(Invitation).where(Invitation.id == -1).values(status="expired"))
    db.session.commit()
    schedule.refresh(db.session, county_today())  # nothing to do
    db.session.commit()
    assert (_version("bph"), _rows()) == (before, rows)


def test_a_rollback_after_the_connection_was_lost_finishes_and_logs_nothing(
    app: Flask, enrol_patient: Any
) -> None:
    """The database going away mid-transaction invalidates the connection; the log's rollback
    hook must let the rollback finish (else the request's 503 page became a 500)."""
    enrolment = enrol_patient()
    before, rows = _version("bph"), _rows()
    db.session.execute(
        update(Invitation).where(Invitation.enrolment_id == enrolment.id).values(status="expired")
    )
    db.session.connection().invalidate()  # what a lost server does to the connection
    db.session.rollback()  # raised PendingRollbackError from the hook before
    assert (_version("bph"), _rows()) == (before, rows)
    assert db.session.scalar(select(Invitation.status).where(
        Invitation.enrolment_id == enrolment.id)) != "expired"  # fmt: skip


def test_an_unattributed_write_moves_every_pilot(app: Flask, enrol_patient: Any) -> None:
    enrolment = enrol_patient()
    enrol_patient(pilot="older-adults", arm="outreach")
    bph, older = _version("bph"), _version("older-adults")
    db.session.execute(
        update(Invitation).where(Invitation.enrolment_id == enrolment.id).values(status="expired")
    )
    db.session.commit()
    assert _version("bph") != bph and _version("older-adults") != older
    newest = db.session.scalars(select(DataChange).order_by(DataChange.id.desc())).first()
    assert newest is not None and newest.pilot_id is None


def test_the_bulk_loader_is_seen_and_pruning_keeps_every_version(
    app: Flask, enrol_patient: Any
) -> None:
    enrolment = enrol_patient()
    before = _version("bph")
    frame = pd.DataFrame(
        {
            "enrolment_id": [enrolment.id],
            "kind": ["direct"],
            "amount_eur": [120.0],
            "price_year": [county_today().year],
            "service_date": [county_today()],
            "description": ["bulk"],
        }
    )
    with change_log.pilot_scope(db.session, enrolment.pilot_id):
        bulk_insert(db.session, CostItem.__table__, frame)
    db.session.commit()
    after = _version("bph"), _version("older-adults")
    assert after[0] != before
    assert _rows() > 2
    assert change_log.prune(db.session) > 0
    db.session.commit()
    assert (_version("bph"), _version("older-adults")) == after
    assert _rows() <= 3  # the newest row of each pilot and the newest for every pilot


def test_the_audit_names_a_change_hidden_from_the_log(app: Flask, enrol_patient: Any) -> None:
    enrolment = enrol_patient()
    _version("bph")
    with change_log.analysis_neutral_scope(db.session):  # wrongly: the statuses are read
        db.session.execute(
            update(Invitation)
            .where(Invitation.enrolment_id == enrolment.id)
            .values(status="expired")
        )
    db.session.commit()
    with pytest.raises(DataVersionAuditError, match="change log"):
        _version("bph")
