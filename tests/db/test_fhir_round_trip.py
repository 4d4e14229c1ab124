"""FHIR round trip: a pilot's answers exported as a FHIR Bundle and imported back into the same
people give the same scores, modes, proxies and dates (both pilots, synthetic data)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import delete, select

from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401 - fixtures
from vaikuttavuus import queries
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, Enrolment, Pilot, Response, TimePoint
from vaikuttavuus.services.definitions import pilot_spec
from vaikuttavuus.services.exports import ExportOptions, fhir_bundle
from vaikuttavuus.services.imports import run_import


def _state(pilot: Pilot) -> pd.DataFrame:
    """Every submitted response of the pilot: scores, mode, proxy, day and language."""
    codes = list(pilot_spec(pilot).instrument_ids)
    scores = pd.concat(
        [
            frame.drop(columns=["response_id"]).assign(instrument=code)
            for code, frame in queries.cohort_scores(db.session, pilot.id, codes).items()
        ],
        ignore_index=True,
    )
    rows = db.session.execute(
        select(
            Response.enrolment_id,
            Response.instrument_code,
            TimePoint.code,
            Response.submitted_at,
            Response.language,
        )
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .where(Enrolment.pilot_id == pilot.id, Response.status == "submitted")
    ).all()
    keys = ["enrolment_id", "instrument", "time_point"]
    meta = pd.DataFrame(
        [(e, i, t, moment.date(), language) for e, i, t, moment, language in rows],
        columns=[*keys, "day", "language"],
    )
    merged = scores.merge(meta, on=keys, how="outer", validate="one_to_one")
    return merged.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("code", ["bph", "older-adults"])
def test_exported_fhir_answers_import_back_to_the_same_scores_modes_and_dates(
    cohort_app: Flask,  # noqa: F811 - the fixture
    code: str,
) -> None:
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert pilot is not None
    before = _state(pilot)
    assert len(before) > 100
    assert set(before["mode"]) >= {"web", "phone", "paper"} and before["proxy"].any()

    bundle = "".join(fhir_bundle(db.session, pilot, ExportOptions())).encode("utf-8")
    ids = select(Response.id).join(Enrolment).where(Enrolment.pilot_id == pilot.id)
    db.session.execute(delete(Answer).where(Answer.response_id.in_(ids)))
    db.session.execute(delete(Response).where(Response.id.in_(ids.scalar_subquery())))
    db.session.commit()
    assert _state(pilot).empty

    outcome = run_import(
        db.session,
        kind="responses",
        data=bundle,
        filename=f"{code}.json",
        pilot_code=code,
        actor="tester",
    )
    db.session.commit()
    assert outcome.status == "stored", outcome.errors[:5]
    assert (
        outcome.rows_stored == before.groupby(["enrolment_id", "instrument", "time_point"]).ngroups
    )
    # paper answers with a skipped required item come back as they were, with a note each
    assert outcome.note_count == int((before["items_missing"] > 0).sum()) > 0
    after = _state(pilot)
    pd.testing.assert_frame_equal(after, before, check_dtype=False)

    # the same bundle again: nothing new
    again = run_import(
        db.session,
        kind="responses",
        data=bundle,
        filename=f"{code}.json",
        pilot_code=code,
        actor="tester",
    )
    assert (again.status, again.rows_stored, again.rows_duplicate) == (
        "stored",
        0,
        outcome.rows_stored,
    )


def test_bundle_entries_that_cannot_be_read_are_reported(cohort_app: Flask) -> None:  # noqa: F811
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "QuestionnaireResponse", "status": "in-progress"}},
            {
                "resource": {
                    "resourceType": "QuestionnaireResponse",
                    "status": "completed",
                    "subject": {"reference": "Patient/not-a-known-key"},
                    "questionnaire": "https://vaikuttavuus.fi/fhir/Questionnaire/ipss|1",
                    "authored": "2025-03-01T10:00:00+02:00",
                    "item": [{"linkId": "no_such_item", "answer": [{"valueInteger": 1}]}],
                }
            },
        ],
    }
    import json

    outcome = run_import(
        db.session,
        kind="responses",
        data=json.dumps(bundle).encode(),
        filename="bad.json",
        pilot_code="bph",
        actor="tester",
    )
    found = [(e.line, e.column, e.code, e.params.get("reason")) for e in outcome.errors]
    assert found[:4] == [
        (1, "resourceType", "fhir_entry", "resource"),
        (2, "status", "fhir_entry", "status"),
        (3, "subject", "unknown_person", "subject"),
        (3, "item", "fhir_entry", "link_id"),
    ]
    assert (3, "time_point", "missing", None) in found
    assert outcome.status == "rejected"
    refused = run_import(
        db.session,
        kind="responses",
        data=b'{"resourceType": "Patient"}',
        filename="p.json",
        pilot_code="bph",
        actor="tester",
    )
    assert [e.code for e in refused.errors] == ["not_fhir"]
