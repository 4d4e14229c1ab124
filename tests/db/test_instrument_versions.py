"""A changed instrument is a new version; stored responses keep theirs and are scored with it.

IPSS version 2 (a copy of version 1 whose total is the *mean* of the seven symptom items instead
of their sum) is loaded from a questionnaire folder of its own (``VAIKUTTAVUUS_QUESTIONNAIRES``)
after some people have answered version 1. Then:

* a submitted version-1 response stays version 1 and keeps its version-1 total (the sum);
* a version-1 response still in progress stays version 1 when it is finished and sent, and is
  scored as version 1;
* a response begun after the new version was loaded — a new enrolment's, or that of an
  invitation made earlier but first opened now — gets version 2 and its total is the mean.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from sqlalchemy import select

from tests.support.answering import answer_and_submit
from vaikuttavuus import queries
from vaikuttavuus.definitions import DefinitionError
from vaikuttavuus.extensions import db
from vaikuttavuus.models import InstrumentVersion, Pilot, Response
from vaikuttavuus.paths import questionnaires_dir
from vaikuttavuus.services import patient_flow
from vaikuttavuus.services.definitions import current_instrument, sync_definitions

SYMPTOMS = {f"ipss{n}": "2" for n in range(1, 7)} | {"ipss7": "3", "ipss_qol": "1"}
TOTAL_V1 = 6 * 2 + 3  # version 1: the sum of the seven symptom items
TOTAL_V2 = TOTAL_V1 / 7  # version 2: their mean


@pytest.fixture
def second_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A questionnaire folder with the shipped instruments and ``ipss-2.yaml`` (not loaded yet:
    the environment points at it only once :func:`load_second_version` runs)."""
    folder = tmp_path / "questionnaires"
    shutil.copytree(questionnaires_dir(), folder)
    data = yaml.safe_load((folder / "ipss-1.yaml").read_text(encoding="utf-8"))
    data["version"] = "2"
    total = next(score for score in data["scores"] if score["id"] == "total")
    assert total["method"] == "sum"
    total["method"] = "mean"
    total["range"] = [0, 5]
    total.pop("minimal_important_change", None)
    (folder / "ipss-2.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return folder


def load_second_version(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAIKUTTAVUUS_QUESTIONNAIRES", str(folder))
    report = sync_definitions(db.session)
    db.session.commit()
    assert report.instruments_added == ["ipss@2"]


def ipss_response(enrolment: Any) -> Response:
    db.session.expire_all()
    response = db.session.scalar(
        select(Response).where(
            Response.enrolment_id == enrolment.id, Response.instrument_code == "ipss"
        )
    )
    assert response is not None
    return response


def ipss_totals() -> dict[int, tuple[str, float]]:
    """Enrolment id → (instrument version, total) of every submitted IPSS response in BPH."""
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    scores = queries.instrument_scores(db.session, pilot.id, "ipss")
    versions = {v.id: v.version for v in db.session.scalars(select(InstrumentVersion))}
    return {
        int(row.enrolment_id): (versions[int(row.instrument_version_id)], float(row.total))
        for row in scores.itertuples()
    }


def test_stored_responses_keep_their_version_and_are_scored_with_it(
    app: Flask,
    enrol_patient: Any,
    patient_link: Any,
    second_version: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submitted = enrol_patient("bph", "operating_room", index_offset_days=10)
    answer_and_submit(db.session, patient_link(submitted), overrides=SYMPTOMS)
    unfinished = enrol_patient("bph", "outpatient_clinic", index_offset_days=10)
    unfinished_link = patient_link(unfinished)
    answer_and_submit(db.session, unfinished_link, overrides=SYMPTOMS, submit=False)
    invited_earlier = enrol_patient("bph", "operating_room", index_offset_days=10)
    first = current_instrument(db.session, "ipss")
    assert (first.version, ipss_response(submitted).status) == ("1", "submitted")
    assert (ipss_response(unfinished).status, ipss_response(unfinished).instrument_version_id) == (
        "in_progress",
        first.id,
    )
    assert ipss_totals() == {submitted.id: ("1", TOTAL_V1)}

    load_second_version(second_version, monkeypatch)
    second = current_instrument(db.session, "ipss")
    assert second.version == "2" and second.id != first.id
    db.session.refresh(first)
    assert not first.is_current

    # the submitted response: still version 1, still scored as version 1
    assert ipss_response(submitted).instrument_version_id == first.id
    assert ipss_totals() == {submitted.id: ("1", TOTAL_V1)}

    # the response in progress: finished and sent after the change, still version 1
    state = patient_flow.resolve(db.session, unfinished_link)
    assert state.usable and state.invitation is not None
    responses = patient_flow.ensure_responses(db.session, state.invitation, "fi")
    assert [r.instrument_version_id for r in responses if r.instrument_code == "ipss"] == [first.id]
    steps = patient_flow.steps_for(responses)
    assert {step.spec.version for step in steps if step.spec.id == "ipss"} == {"1"}
    assert patient_flow.submit(db.session, state.invitation, responses, steps).submitted
    db.session.commit()
    assert ipss_response(unfinished).instrument_version_id == first.id

    # responses begun now: version 2, scored as version 2
    newcomer = enrol_patient("bph", "outpatient_clinic", index_offset_days=10)
    answer_and_submit(db.session, patient_link(newcomer), overrides=SYMPTOMS)
    answer_and_submit(db.session, patient_link(invited_earlier), overrides=SYMPTOMS)
    for enrolment in (newcomer, invited_earlier):
        assert ipss_response(enrolment).instrument_version_id == second.id

    assert ipss_totals() == {
        submitted.id: ("1", TOTAL_V1),
        unfinished.id: ("1", TOTAL_V1),
        newcomer.id: ("2", pytest.approx(TOTAL_V2)),
        invited_earlier.id: ("2", pytest.approx(TOTAL_V2)),
    }


def test_a_changed_definition_needs_a_new_version(
    app: Flask, second_version: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing a loaded version in place is refused, so that stored answers keep the meaning
    they were given in."""
    (second_version / "ipss-2.yaml").unlink()
    path = second_version / "ipss-1.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["scores"] = [s for s in data["scores"] if s["id"] != "storage"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    monkeypatch.setenv("VAIKUTTAVUUS_QUESTIONNAIRES", str(second_version))
    with pytest.raises(DefinitionError, match="give the changed definition a new version"):
        sync_definitions(db.session)
    db.session.rollback()
    assert current_instrument(db.session, "ipss").version == "1"
