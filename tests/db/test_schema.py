"""The migrations and the models agree, and the audit trail is append-only in the database."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from vaikuttavuus.database import current_revision, table_names
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Base
from vaikuttavuus.services import audit


def test_migrated_schema_matches_the_models(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert current_revision() is not None
    assert set(Base.metadata.tables) <= set(table_names())


def test_audit_events_cannot_be_changed_or_deleted(app: Flask) -> None:
    with app.test_request_context():
        event = audit.record("view_patient", object_type="enrolment", object_id=1, person_id=1)
        db.session.commit()
        event_id = event.id
    with pytest.raises(DatabaseError):
        db.session.execute(
            text("UPDATE audit_events SET action = 'tampered' WHERE id = :id"), {"id": event_id}
        )
        db.session.commit()
    db.session.rollback()
    with pytest.raises(DatabaseError):
        db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event_id})
        db.session.commit()
    db.session.rollback()
    stored = db.session.get(AuditEvent, event_id)
    assert stored is not None
    assert stored.action == "view_patient"


def test_migration_0003_converts_the_modes_and_keeps_every_answer(
    app: Flask, enrol_patient: Any
) -> None:
    from alembic import command

    from vaikuttavuus.database import alembic_config, upgrade_schema
    from vaikuttavuus.domain.answers import StoredAnswer
    from vaikuttavuus.models import Invitation
    from vaikuttavuus.services import patient_flow

    given = {"web": False, "phone": True, "paper": False}
    for mode, proxy in given.items():
        enrolment = enrol_patient("bph", "operating_room")
        invitation = db.session.scalars(
            select(Invitation).where(Invitation.enrolment_id == enrolment.id)
        ).first()
        assert invitation is not None
        responses = patient_flow.ensure_responses(
            db.session, invitation, "fi", mode=mode, proxy=proxy
        )
        section = patient_flow.steps_for(responses)[0].section
        answers = {item.id: StoredAnswer("1", 1.0) for item in section.items}
        patient_flow.save_section(db.session, responses[0], section, answers, "fi")
    db.session.commit()

    def table(sql: str) -> list[tuple[Any, ...]]:
        with db.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]

    answers_before = table("SELECT response_id, item_id, value FROM answers ORDER BY id")
    assert answers_before
    db.session.remove()
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")
    modes = table("SELECT mode, count(*) FROM responses GROUP BY mode ORDER BY mode")
    assert modes == [("assisted", 4), ("self", 2)]
    assert table("SELECT response_id, item_id, value FROM answers ORDER BY id") == answers_before

    upgrade_schema()
    modes = table("SELECT mode, count(*) FROM responses GROUP BY mode ORDER BY mode")
    assert modes == [("phone", 4), ("web", 2)]
    assert table("SELECT DISTINCT proxy FROM responses") in ([(False,)], [(0,)])
    assert table("SELECT response_id, item_id, value FROM answers ORDER BY id") == answers_before
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
