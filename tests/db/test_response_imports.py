"""Importing questionnaire answers (``responses``) on both backends: stored, scored and
counted like answers given in the app; idempotent; all or nothing; the window rule; an
unsent response replaced; an interrupted import leaves nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import func, select

from tests.support.import_files import CODES, NEW_CODES, analysed_tables, csv_bytes, xlsx_bytes
from vaikuttavuus import bulk, queries
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    Answer,
    AuditEvent,
    ImportBatch,
    Invitation,
    Pilot,
    Response,
    TimePoint,
)
from vaikuttavuus.services import imports, patient_flow
from vaikuttavuus.services.imports import run_import

TODAY = date.today()
INDEX_OFFSET = -100
"""BPH people's index date: the baseline window is days −160…−100 from today, m3 −40…+20."""
BASELINE_DAY = TODAY + timedelta(days=INDEX_OFFSET - 10)
M3_DAY = TODAY - timedelta(days=30)
IPSS = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"]
EQ5D = ["mo", "sc", "ua", "pd", "ad", "vas"]
HEADER = ["identity_code", "time_point", "instrument", "completed_on", "mode", "proxy"]
HEADER += IPSS + EQ5D


def ipss_row(
    code: str, day: date, answers: list[Any], *, mode: str = "", proxy: str = ""
) -> list[Any]:
    return [code, "baseline", "ipss", day.strftime("%d.%m.%Y"), mode, proxy, *answers, *[""] * 6]


def eq5d_row(code: str, day: date, answers: list[Any], *, mode: str = "") -> list[Any]:
    return [code, "baseline", "eq5d5l", day.isoformat(), mode, "", *[""] * 8, *answers]


GOOD = [
    ipss_row(CODES[0], BASELINE_DAY, [1, 2, 3, 4, 5, 0, 1, 2], mode="paper", proxy="yes"),
    eq5d_row(CODES[0], BASELINE_DAY, [1, 2, 1, 1, 3, 70], mode="paper"),
    ipss_row(CODES[1], BASELINE_DAY, [0, 0, 1, 1, 0, 0, 1, 1]),
]


@pytest.fixture
def people(app: Flask, enrol_patient: Any) -> dict[str, Any]:
    """CODES[0..1] in BPH (index date 100 days ago), CODES[2] in the older adults pilot."""
    return {
        CODES[0]: enrol_patient("bph", "operating_room", INDEX_OFFSET, identity_code=CODES[0]),
        CODES[1]: enrol_patient("bph", "outpatient_clinic", INDEX_OFFSET, identity_code=CODES[1]),
        CODES[2]: enrol_patient("older-adults", "outreach", -20, identity_code=CODES[2]),
    }


def do_import(data: bytes, **options: Any) -> imports.ImportOutcome:
    options.setdefault("pilot_code", "bph")
    outcome = run_import(
        db.session, kind="responses", data=data, filename="answers.csv", actor="tester", **options
    )
    db.session.commit()
    return outcome


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def invitation(enrolment: Any, time_point: str) -> Invitation:
    found = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == time_point)
    )
    assert found is not None
    return found


def test_answers_are_stored_scored_like_app_answers_and_complete_the_invitation(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaikuttavuus.services import response_imports

    monkeypatch.setattr(response_imports, "ANSWER_CHUNK", 5)  # answers stored in 5 inserts
    outcome = do_import(csv_bytes(HEADER, GOOD))
    assert outcome.status == "stored", outcome.errors
    assert (outcome.rows_total, outcome.rows_stored, outcome.rows_duplicate) == (3, 3, 0)
    assert (count(Response), count(Answer)) == (3, 8 + 6 + 8)
    assert invitation(people[CODES[1]], "baseline").status != "completed"  # EQ-5D-5L missing

    stored = db.session.scalars(select(Response).order_by(Response.id)).all()
    assert {(r.status, r.import_batch_id) for r in stored} == {("submitted", outcome.batch_id)}
    assert [(r.mode, r.proxy) for r in stored] == [
        ("paper", True),
        ("paper", False),
        ("imported", False),
    ]
    assert {r.submitted_at.date() for r in stored if r.submitted_at} == {BASELINE_DAY}
    assert all(r.entered_by_user_id is None for r in stored)

    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    scores = queries.cohort_scores(db.session, pilot.id, ["ipss", "eq5d5l"])
    ipss = scores["ipss"].set_index("enrolment_id")
    first, second = people[CODES[0]].id, people[CODES[1]].id
    assert ipss.loc[first, "total"] == 16 and ipss.loc[first, "qol"] == 2
    assert ipss.loc[second, "total"] == 3
    assert (ipss.loc[first, "mode"], bool(ipss.loc[first, "proxy"])) == ("paper", True)
    assert (ipss.loc[second, "mode"], bool(ipss.loc[second, "proxy"])) == ("imported", False)
    assert scores["eq5d5l"].set_index("enrolment_id").loc[first, "vas"] == 70

    # every instrument of the baseline answered → completed
    done = invitation(people[CODES[0]], "baseline")
    assert done.status == "completed" and done.completed_at is not None
    assert done.completed_at.date() == BASELINE_DAY
    assert all(r.invitation_id is not None for r in stored)

    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "import")).one()
    assert event.details["kind"] == "responses" and event.details["rows_stored"] == 3

    # several invitations completed by one import (the people's m3: all three instruments)
    header = [*HEADER, "information", "overall"]
    m3 = [
        [code, "m3", instrument, M3_DAY, "", "", *answers]
        for code in CODES[:2]
        for instrument, answers in (
            ("ipss", [1] * 8 + [""] * 8),
            ("eq5d5l", [""] * 8 + [1, 1, 1, 1, 1, 80, "", ""]),
            ("prem_bph", [""] * 14 + [4, 5]),
        )
    ]
    assert do_import(csv_bytes(header, m3)).rows_stored == 6
    assert {invitation(people[c], "m3").status for c in CODES[:2]} == {"completed"}


def test_a_large_import_refreshes_the_planner_statistics_of_responses_and_answers(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL plans the reads right after an import (the wide export, an analysis) on
    the new row counts, not on autovacuum's older ones (see ``bulk.analyze_after_bulk``)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: autovacuum's statistics lag behind a bulk load")
    monkeypatch.setattr(bulk, "BULK_ROWS", 1)  # the test's file is small; the rule is the same

    assert not {"responses", "answers"} & analysed_tables(db.session)
    assert do_import(csv_bytes(HEADER, GOOD)).status == "stored"
    assert {"responses", "answers"} <= analysed_tables(db.session)


def test_importing_again_stores_nothing_and_a_changed_answer_is_refused(
    people: dict[str, Any],
) -> None:
    assert do_import(csv_bytes(HEADER, GOOD)).status == "stored"
    answers = count(Answer)

    again = do_import(xlsx_bytes(HEADER, GOOD))
    assert (again.status, again.rows_stored, again.rows_duplicate) == ("stored", 0, 3)
    assert (count(Response), count(Answer)) == (3, answers)

    changed = [list(row) for row in GOOD]
    changed[2][6] = 5  # ipss1 of the second person
    refused = do_import(csv_bytes(HEADER, changed))
    assert refused.status == "rejected"
    assert [(e.line, e.column, e.code) for e in refused.errors] == [(4, "instrument", "conflict")]
    assert refused.errors[0].params["differs"] == ["answers"]
    with force_locale("en"):
        assert "never changes a submitted response" in imports.describe(refused.errors[0])
    assert (count(Response), count(Answer)) == (3, answers)


def test_one_bad_row_rejects_the_file_with_a_report_row_by_row(
    people: dict[str, Any], enrol_patient: Any
) -> None:
    rows = [
        GOOD[0],
        ipss_row(NEW_CODES[0], BASELINE_DAY, [1] * 8),  # a valid code, but no such person
        ipss_row(CODES[2], BASELINE_DAY, [1] * 8),  # enrolled in the other pilot
        [CODES[1], "baseline", "ucla3", BASELINE_DAY, "", "", *[""] * 14],  # not a BPH instrument
        ipss_row(CODES[1], TODAY - timedelta(days=20), [1] * 8),  # after the baseline window
        ipss_row(CODES[1], BASELINE_DAY, [7, 1, 1, 1, 1, 1, 1, 1]),  # code outside the set
        eq5d_row(CODES[1], BASELINE_DAY, ["", "", "", "", "", ""]),  # no answers at all
        eq5d_row(CODES[1], BASELINE_DAY, [1, 1, 1, 1, 1, 50], mode="fax"),
        ipss_row(CODES[0], BASELINE_DAY, [1, 2, 3, 4, 5, 0, 1, 2], mode="paper", proxy="yes"),
    ]
    rows[4][HEADER.index("mo")] = 3  # also an EQ-5D answer on an IPSS row
    outcome = do_import(csv_bytes(HEADER, rows))
    assert outcome.status == "rejected"
    assert [(e.line, e.column, e.code) for e in outcome.errors] == [
        (3, "identity_code", "unknown_person"),
        (4, "identity_code", "unknown_person"),
        (5, "instrument", "unknown_code"),
        (6, "completed_on", "outside_window"),
        (6, "mo", "not_in_instrument"),
        (7, "ipss1", "unknown_code"),
        (8, "instrument", "no_answers"),
        (9, "mode", "unknown_code"),
        (10, None, "duplicate"),
    ]
    assert outcome.errors[1].params == {"reason": "not_enrolled"}
    assert outcome.errors[5].params["allowed"] == ["0", "1", "2", "3", "4", "5"]
    assert (count(Response), count(Answer)) == (0, 0)
    with force_locale("fi"):
        finnish = imports.describe(outcome.errors[3])
    with force_locale("en"):
        english = imports.describe(outcome.errors[3])
    assert "baseline" in finnish and finnish != english


def test_not_scheduled_and_unanswered_required_items(people: dict[str, Any]) -> None:
    header = [*HEADER, "information"]
    unscheduled = [CODES[1], "baseline", "prem_bph", BASELINE_DAY, "", "", *[""] * 14, "4"]
    outcome = do_import(csv_bytes(header, [unscheduled]))
    assert [(e.column, e.code) for e in outcome.errors] == [("instrument", "not_scheduled")]
    assert outcome.errors[0].params["instruments"] == ["ipss", "eq5d5l"]

    # a skipped IPSS item: stored as given, with a note; the total is not computed
    skipped = ipss_row(CODES[1], BASELINE_DAY, [1, 1, 1, "", 1, 1, 1, 2])
    stored = do_import(csv_bytes(HEADER, [skipped]))
    assert stored.status == "stored" and stored.rows_stored == 1
    assert [(n.line, n.column, n.code) for n in stored.notes] == [(2, "ipss4", "incomplete")]
    assert stored.notes[0].params == {
        "instrument": "ipss",
        "items": ["ipss4"],
        "scores": ["total", "storage"],
    }
    batch = db.session.get(ImportBatch, stored.batch_id)
    assert batch is not None and batch.note_count == 1
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    ipss = queries.cohort_scores(db.session, pilot.id, ["ipss"])["ipss"].iloc[0]
    assert ipss["items_missing"] == 1 and ipss["qol"] == 2
    assert ipss[["total", "storage"]].isna().all() and ipss["voiding"] == 4


def test_answers_outside_the_window_only_when_allowed_and_recorded(
    people: dict[str, Any],
) -> None:
    late = [ipss_row(CODES[1], M3_DAY, [1] * 8)]
    assert do_import(csv_bytes(HEADER, late)).status == "rejected"
    outcome = do_import(csv_bytes(HEADER, late), allow_outside_window=True)
    assert outcome.status == "stored" and outcome.rows_stored == 1
    batch = db.session.get(ImportBatch, outcome.batch_id)
    assert batch is not None and batch.allow_outside_window
    event = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.object_id == str(batch.id), AuditEvent.action == "import"
        )
    ).one()
    assert event.details["allow_outside_window"] is True
    with pytest.raises(imports.ImportRefusedError):
        run_import(
            db.session,
            kind="resource_use",
            data=b"pseudonym\n",
            filename="x.csv",
            pilot_code="bph",
            allow_outside_window=True,
        )


def test_a_started_unsent_response_is_replaced(people: dict[str, Any]) -> None:
    enrolment = people[CODES[0]]
    open_invitation = invitation(enrolment, "baseline")
    started = patient_flow.ensure_responses(db.session, open_invitation, "fi")
    steps = patient_flow.steps_for(started)
    from vaikuttavuus.domain.answers import StoredAnswer

    patient_flow.save_section(
        db.session, started[0], steps[0].section, {"ipss1": StoredAnswer("5", 5.0)}, "fi"
    )
    db.session.commit()
    outcome = do_import(csv_bytes(HEADER, GOOD[:2]))
    assert outcome.status == "stored" and outcome.rows_stored == 2
    responses = db.session.scalars(
        select(Response).where(Response.enrolment_id == enrolment.id)
    ).all()
    assert sorted((r.instrument_code, r.status, r.mode) for r in responses) == [
        ("eq5d5l", "submitted", "paper"),
        ("ipss", "submitted", "paper"),
    ]
    ipss = next(r for r in responses if r.instrument_code == "ipss")
    values = dict(
        db.session.execute(
            select(Answer.item_id, Answer.value).where(Answer.response_id == ipss.id)
        ).all()
    )
    assert values["ipss1"] == "1" and len(values) == 8
    assert invitation(enrolment, "baseline").status == "completed"


def test_an_import_interrupted_while_storing_leaves_nothing(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaikuttavuus.services import response_imports

    real = response_imports.bulk_insert

    def failing(session: Any, table: Any, frame: Any, **options: Any) -> int:
        if table.name == "answers":
            raise RuntimeError("connection lost")
        return real(session, table, frame, **options)

    monkeypatch.setattr(response_imports, "bulk_insert", failing)
    outcome = do_import(csv_bytes(HEADER, GOOD))
    assert outcome.status == "failed" and outcome.errors[0].code == "import_failed"
    assert (count(Response), count(Answer)) == (0, 0)
    assert invitation(people[CODES[0]], "baseline").status != "completed"
    monkeypatch.setattr(response_imports, "bulk_insert", real)
    assert do_import(csv_bytes(HEADER, GOOD)).rows_stored == 3
