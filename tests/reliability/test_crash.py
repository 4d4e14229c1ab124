"""SIGKILL the server (gunicorn master and workers) in the middle of a load of submits, start it
again: every response acknowledged with the thank-you redirect is there and complete, no
submitted response is half-written, and the interrupted patients can finish with the same
links — without duplicates."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from tests.reliability.conftest import Server, record_figures, scaled
from tests.reliability.load import Client, Stats, run_patients
from tests.reliability.test_concurrency import (
    INSTRUMENTS_AT_BPH_BASELINE,
    check_no_duplicates,
    check_submitted,
    prepare_patients,
)
from vaikuttavuus.domain.answers import missing_required
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, Response
from vaikuttavuus.services.definitions import instrument_spec


def half_written() -> list[str]:
    """Submitted responses missing a required answer (there must be none)."""
    problems = []
    for response in db.session.scalars(select(Response).where(Response.status == "submitted")):
        answers = dict(
            db.session.execute(
                select(Answer.item_id, Answer.value).where(Answer.response_id == response.id)
            ).all()
        )
        missing = missing_required(instrument_spec(response.instrument_version), answers)
        if missing:
            problems.append(f"response {response.id} submitted without {missing}")
    return problems


@pytest.mark.slow
def test_acknowledged_responses_survive_sigkill(
    app: Flask, server: Server, enrol_patient: Any, patient_link: Any, backend: str
) -> None:
    patients = prepare_patients(enrol_patient, patient_link, scaled(30))
    db.session.remove()
    server.start()
    stats = Stats()
    stop = threading.Event()
    client = Client(server.url, stats, stop=stop)
    kill_after = max(len(patients) // 3, 2)
    killed = threading.Event()

    def killer() -> None:
        while not killed.is_set():
            if stats.submits_acknowledged >= kill_after:
                server.kill()  # mid-load: other clients are posting pages and submits
                stop.set()
                killed.set()
                return
            killed.wait(0.005)

    watcher = threading.Thread(target=killer)
    watcher.start()
    try:
        run_patients(client, patients, threads=8)
    finally:
        if not killed.is_set():
            killed.set()
        watcher.join()
    assert server.process is not None and server.process.returncode is not None
    acknowledged = [p for p in patients if p.submitted]
    interrupted = [p for p in patients if not p.submitted]
    assert len(acknowledged) >= kill_after
    assert interrupted, "the kill came after the load: nothing was interrupted"

    # With the server dead: what it acknowledged is on disk, and nothing is half-written.
    db.session.expire_all()
    if backend == "sqlite":
        assert db.session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert check_submitted(patients) == []
    assert half_written() == []
    submitted_at_crash = db.session.scalar(
        select(func.count()).select_from(Response).where(Response.status == "submitted")
    )
    assert submitted_at_crash >= INSTRUMENTS_AT_BPH_BASELINE * len(acknowledged)
    db.session.remove()

    # Restart; the interrupted patients carry on with the same links.
    server.start()
    resumed_stats = Stats()
    resumed = Client(server.url, resumed_stats, timeout_retry=0.0)
    run_patients(resumed, interrupted, threads=8)
    assert resumed_stats.problems == []
    assert [p.seed for p in patients if not p.submitted] == []

    db.session.expire_all()
    assert check_submitted(patients) == []
    assert half_written() == []
    check_no_duplicates()
    submitted = db.session.scalar(
        select(func.count()).select_from(Response).where(Response.status == "submitted")
    )
    assert submitted == INSTRUMENTS_AT_BPH_BASELINE * len(patients)
    record_figures(
        "crash",
        backend,
        {
            "patients": len(patients),
            "acknowledged_before_kill": len(acknowledged),
            "interrupted": len(interrupted),
            "submitted_rows_at_kill": submitted_at_crash,
            "requests_before_kill": stats.requests,
            "connection_errors_at_kill": stats.connection_errors,
            "failures": stats.failures + resumed_stats.failures,
            "lost": 0,
        },
    )
