"""Migration 0004 on data stored before it: identity codes typed into free-text answers are
masked, an import's stored header errors are cut to 1,000 (issue 16, items 2 and 6), and the
shared throttle table comes and goes with the revision."""

from __future__ import annotations

from typing import Any

from alembic import command
from flask import Flask
from sqlalchemy import inspect, select, text

from tests.db.test_exports_service import store_response
from vaikuttavuus.database import alembic_config, current_revision, upgrade_schema
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, ImportBatch

CODE = "131052-308T"


def test_old_data_is_masked_and_capped_by_the_upgrade(app: Flask, enrol_patient: Any) -> None:
    response = store_response(
        enrol_patient(index_offset_days=-90), "m3", "prem_bph", {"comments": "kommentti"}
    )
    batch = ImportBatch(
        kind="resource_use", pilot_code="bph", filename="x.csv", file_sha256="0" * 64,
        actor="lead", status="rejected", error_count=2500,
        errors=[{"line": 1, "column": f"c{n}", "value": None, "code": "unknown_column",
                 "params": {}} for n in range(2500)],
    )  # fmt: skip
    db.session.add(batch)
    db.session.commit()
    response_id, batch_id = response.id, batch.id
    # As an answer stored by an earlier release would be (before masking existed).
    db.session.execute(
        text("UPDATE answers SET value = :value WHERE response_id = :id"),
        {"value": f"Soittakaa, hetu {CODE} tai 010150+901D.", "id": response_id},
    )
    db.session.commit()
    db.session.remove()

    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")
    assert "throttle_counters" not in inspect(db.engine).get_table_names()
    upgrade_schema()
    assert current_revision() not in (None, "0002", "0003")
    assert "throttle_counters" in inspect(db.engine).get_table_names()

    value = db.session.scalar(select(Answer.value).where(Answer.response_id == response_id))
    assert value == "Soittakaa, hetu ******-**** tai ******+****."
    stored = db.session.get(ImportBatch, batch_id)
    assert stored is not None
    assert len(stored.errors) == 1000 and stored.error_count == 2500
    assert stored.errors[0]["column"] == "c0"
