"""Patients submit against the real server (gunicorn: worker processes × threads) while a pilot
lead reads every section of the cohort page and the CSVs behind them: no request fails (the
issue's ``IndexError`` when answers were read in another statement than their responses), and
every download is internally consistent — reads that saw the same data version
(``X-Data-Version``) give the same counts, whichever table they come from: completed baseline
invitations (response rates, late answers) and submitted baseline responses of each instrument
(data quality). Each submit completes the invitation and both responses in one transaction,
so in one snapshot these counts are always equal."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.reliability.conftest import Server, record_figures, scaled
from tests.reliability.load import FORM_TOKEN
from tests.support.answering import answer_and_submit, raw_answer
from vaikuttavuus.domain.answers import canonical
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Invitation
from vaikuttavuus.services import patient_flow

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SECTIONS = ("overview", "quality", "outcomes", "costs", "cea", "funnel")
CYCLES = max(scaled(2) // 2, 1)
"""Times each reader reads every page and table (more at a larger VAIKUTTAVUUS_LOAD_SCALE)."""
TABLES = (
    "response_rates", "late_answers", "data_quality", "enrolment", "imports", "outcomes",
    "qalys", "cea_arms", "ce_plane", "funnel_limits",
)  # fmt: skip


def answered_link(enrol_patient: Any, patient_link: Any, seed: int) -> str:
    """A BPH patient's baseline link with every page answered and saved, not yet sent."""
    import random

    token = patient_link(enrol_patient(pilot="bph", index_offset_days=10), "baseline")
    state = patient_flow.resolve(db.session, token)
    assert state.invitation is not None
    responses = patient_flow.ensure_responses(db.session, state.invitation, "fi")
    rng = random.Random(seed)
    for step in patient_flow.steps_for(responses):
        response = next(r for r in responses if r.id == step.response_id)
        values = {
            item.id: canonical(step.spec, item, raw_answer(step.spec, item, rng))
            for item in step.section.items
        }
        patient_flow.save_section(db.session, response, step.section, values, "fi")
    db.session.commit()
    return token


def staff_session(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/auth/login", timeout=30)
    match = CSRF.search(page.text)
    assert match, page.status_code
    answer = session.post(
        base + "/auth/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.status_code
    return session


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def baseline_counts(name: str, text: str) -> dict[str, int]:
    """The baseline counts a table holds, by what they count."""
    found: dict[str, int] = {}
    for row in rows_of(text):
        if row.get("time_point") != "baseline":
            continue
        if name == "response_rates" and row.get("arm") == "all":
            found["completed"] = int(row["responded"])
        elif name == "late_answers":
            found["completed"] = int(row["completed"])
        elif name == "data_quality":
            found[f"{row['instrument']}_responses"] = int(row["responses"])
    return found


@pytest.mark.slow
def test_cohort_reads_are_consistent_while_patients_submit(
    app: Flask,
    server: Server,
    enrol_patient: Any,
    patient_link: Any,
    make_user: Any,
    backend: str,
) -> None:
    make_user("vastaava", "pilot_lead", ("bph",))
    for n in range(8):  # a cohort to start from (counts above the small-cell limit)
        answer_and_submit(db.session, patient_link(enrol_patient(index_offset_days=10)), seed=n)
    links = [answered_link(enrol_patient, patient_link, 100 + n) for n in range(scaled(150))]
    db.session.remove()
    server.start()
    lead = staff_session(server.url, "vastaava")

    problems: list[str] = []
    acknowledged: list[str] = []
    by_version: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    reads: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    done = threading.Event()

    def submit(token: str) -> None:
        page = requests.get(f"{server.url}/r/{token}/review", timeout=120)
        match = FORM_TOKEN.search(page.text)
        if page.status_code != 200 or match is None:
            with lock:
                problems.append(f"review page: {page.status_code}")
            return
        answer = requests.post(
            f"{server.url}/r/{token}/submit",
            data={"form_token": match.group(1)},
            allow_redirects=False,
            timeout=120,
        )
        with lock:
            if answer.status_code == 302 and "/thanks" in answer.headers.get("Location", ""):
                acknowledged.append(token)
            else:
                problems.append(f"submit: {answer.status_code}")

    def read(path: str, table: str | None) -> None:
        answer = lead.get(server.url + path, timeout=120)
        with lock:
            reads[table or "page"] += 1
            if answer.status_code != 200:
                problems.append(f"{path}: {answer.status_code}")
                return
            if table is None:
                if "data-version" not in answer.text:
                    problems.append(f"{path}: no data version on the page")
                return
            version = answer.headers.get("X-Data-Version")
            if not version:
                problems.append(f"{path}: no X-Data-Version")
                return
            for what, count in baseline_counts(table, answer.text).items():
                by_version[version][what].add(count)

    def reader(offset: int) -> None:
        paths = [(f"/pilot/bph/?section={s}", None) for s in SECTIONS]
        paths += [(f"/pilot/bph/tables/{t}.csv", t) for t in TABLES]
        for number in range(offset, offset + CYCLES * len(paths)):
            read(*paths[number % len(paths)])

    def submitter(mine: list[str]) -> None:
        for token in mine:  # until the readers are done (or the links run out)
            if done.is_set():
                return
            submit(token)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=7) as pool:
        submitting = [pool.submit(submitter, links[n::4]) for n in range(4)]
        reading = [pool.submit(reader, offset) for offset in (0, 5, 11)]
        for future in reading:
            future.result()
        done.set()
        for future in submitting:
            future.result()
    seconds = time.perf_counter() - started

    assert problems == [], problems[:20]
    assert len(acknowledged) > len(links) // 4
    inconsistent = {
        version: {what: sorted(counts) for what, counts in seen.items()}
        for version, seen in by_version.items()
        if len({count for counts in seen.values() for count in counts}) != 1
    }
    assert inconsistent == {}, inconsistent
    assert len(by_version) > 1  # the reads saw the data change
    highest = max(count for seen in by_version.values() for c in seen.values() for count in c)
    db.session.expire_all()
    completed = db.session.scalar(
        select(func.count()).select_from(Invitation).where(Invitation.status == "completed")
    )
    assert completed == 8 + len(acknowledged)
    assert 8 < highest <= completed
    record_figures(
        "snapshot_under_load",
        backend,
        {
            "submits": len(acknowledged),
            "reads": sum(reads.values()),
            "data_versions_seen": len(by_version),
            "seconds": round(seconds, 1),
        },
    )
