"""The migrations and the models agree, and the audit trail is append-only in the database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import text
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
