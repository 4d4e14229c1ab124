"""Many patients at once against the real server (gunicorn: worker processes × threads), with
double submits, retries after client-side timeouts and pages posted out of order: exactly the
expected responses are stored — none lost, none duplicated — and every acknowledged answer is
there."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from tests.reliability.conftest import Server, record_figures, scaled
from tests.reliability.load import Client, Patient, Stats, run_patients
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, Answer, Invitation, Response
from vaikuttavuus.security.tokens import token_hash

INSTRUMENTS_AT_BPH_BASELINE = 2  # IPSS and EQ-5D-5L


def prepare_patients(enrol_patient: Any, patient_link: Any, count: int) -> list[Patient]:
    patients = []
    for n in range(count):
        enrolment = enrol_patient(pilot="bph", index_offset_days=10)
        patients.append(Patient(token=patient_link(enrolment, "baseline"), seed=n))
    return patients


def stored_answers(patient: Patient) -> tuple[list[Response], dict[str, str]]:
    digest = token_hash(patient.token)
    invitation_id = db.session.scalar(
        select(AccessToken.invitation_id).where(AccessToken.token_hash == digest)
    )
    statement = select(Response).where(Response.invitation_id == invitation_id)
    responses = list(db.session.scalars(statement))
    answers = dict(
        db.session.execute(
            select(Answer.item_id, Answer.value).where(
                Answer.response_id.in_([r.id for r in responses])
            )
        ).all()
    )
    return responses, answers


def check_no_duplicates() -> None:
    duplicates = db.session.execute(
        select(Response.enrolment_id, Response.time_point_id, Response.instrument_code)
        .group_by(Response.enrolment_id, Response.time_point_id, Response.instrument_code)
        .having(func.count() > 1)
    ).all()
    assert duplicates == []
    duplicate_answers = db.session.execute(
        select(Answer.response_id, Answer.item_id)
        .group_by(Answer.response_id, Answer.item_id)
        .having(func.count() > 1)
    ).all()
    assert duplicate_answers == []


def check_submitted(patients: list[Patient]) -> list[str]:
    """Every acknowledged submit is stored with every answer the patient sent."""
    problems = []
    db.session.expire_all()
    for patient in patients:
        responses, answers = stored_answers(patient)
        if patient.submitted:
            statuses = sorted(r.status for r in responses)
            if statuses != ["submitted"] * INSTRUMENTS_AT_BPH_BASELINE:
                problems.append(f"{patient.seed}: acknowledged but stored {statuses}")
            if answers != patient.intended:
                problems.append(f"{patient.seed}: answers differ from those sent")
        for number in patient.acknowledged_pages:
            for item, value in patient.pages[number].items():
                if answers.get(item) != value:
                    problems.append(f"{patient.seed}: acknowledged page {number} lost {item}")
    return problems


@pytest.mark.slow
def test_parallel_patients_store_exactly_what_was_acknowledged(
    app: Flask, server: Server, enrol_patient: Any, patient_link: Any, backend: str
) -> None:
    patients = prepare_patients(enrol_patient, patient_link, scaled(24))
    db.session.remove()
    server.start()
    stats = Stats()
    client = Client(server.url, stats)
    seconds = run_patients(client, patients, threads=8)
    # Everyone got through: retries and double submits were answered, not refused.
    assert stats.problems == []
    assert [p.seed for p in patients if not p.submitted] == []

    db.session.expire_all()
    submitted = db.session.scalar(
        select(func.count()).select_from(Response).where(Response.status == "submitted")
    )
    assert submitted == INSTRUMENTS_AT_BPH_BASELINE * len(patients)
    completed = db.session.scalar(
        select(func.count()).select_from(Invitation).where(Invitation.status == "completed")
    )
    assert completed == len(patients)
    check_no_duplicates()
    assert check_submitted(patients) == []
    assert stats.double_submits > 0 and stats.out_of_order > 0 and stats.timeouts > 0

    # Access logs never show a personal link's token.
    log = server.log_text()
    assert "/r/…" in log
    assert not [p.token for p in patients if p.token in log]

    record_figures(
        "concurrency",
        backend,
        {
            **stats.summary(),
            "patients": len(patients),
            "responses": submitted,
            "seconds": round(seconds, 2),
            "requests_per_second": round(stats.requests / seconds, 1),
            "submits_per_second": round(len(patients) / seconds, 1),
            "workers": server.workers,
            "threads": server.threads,
        },
    )
    if backend == "sqlite":
        assert db.session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
