"""Migration 0005: a procedure's setting is any the pilot declares (no fixed list in the
database); the downgrade restores the old check and refuses while other settings are stored."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import delete
from sqlalchemy.exc import DatabaseError

from vaikuttavuus.database import alembic_config, current_revision, table_names, upgrade_schema
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Procedure


def add_procedure(enrolment_id: int, setting: str) -> int:
    procedure = Procedure(
        enrolment_id=enrolment_id,
        procedure_type="turp",
        setting=setting,
        performed_on=date(2025, 3, 14),
    )
    db.session.add(procedure)
    db.session.commit()
    return procedure.id


def downgrade(revision: str) -> None:
    db.session.remove()
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def test_any_setting_is_stored_and_the_downgrade_needs_the_old_ones(
    app: Flask, enrol_patient: Any
) -> None:
    enrolment_id = enrol_patient().id
    day_surgery = add_procedure(enrolment_id, "day_surgery_unit")
    with pytest.raises(RuntimeError, match="1 procedure"):
        downgrade("0004")
    assert db.session.get(Procedure, day_surgery) is not None
    # the refused run changed nothing, not even the steps before the refusal (SQLite too)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision() == head
    assert "analysis_snapshots" in table_names()

    db.session.execute(delete(Procedure).where(Procedure.id == day_surgery))
    db.session.commit()
    add_procedure(enrolment_id, "operating_room")
    downgrade("0004")
    with pytest.raises(DatabaseError):
        add_procedure(enrolment_id, "day_surgery_unit")
    db.session.rollback()

    upgrade_schema()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision() == head
    add_procedure(enrolment_id, "day_surgery_unit")
