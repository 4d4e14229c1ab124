"""The import service on both backends: every kind from CSV and XLSX, each kind of bad row,
re-import, dry run, an interrupted import and the identity code that is never stored."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import func, select

from tests.support.import_files import (
    CODES,
    NEW_CODES,
    analysed_tables,
    csv_bytes,
    file_bytes,
    good_rows,
    text_values,
)
from vaikuttavuus import bulk
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    AuditEvent,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    ImportBatch,
    Invitation,
    Person,
    Procedure,
    ServiceExposure,
)
from vaikuttavuus.paths import PROJECT_ROOT
from vaikuttavuus.services import imports
from vaikuttavuus.services.imports import run_import

TODAY = date.today()
PILOT_OF = {"exposures": "older-adults"}
MODEL_OF = {
    "procedures": Procedure,
    "measurements": ClinicalMeasurement,
    "resource_use": CostItem,
    "direct_costs": CostItem,
    "exposures": ServiceExposure,
}


@pytest.fixture
def people(app: Flask, enrol_patient: Any) -> dict[str, Any]:
    """CODES[0..1] in BPH, CODES[2..3] in the older adults pilot, CODES[4] in no pilot."""
    from vaikuttavuus.services.enrolment import NewPerson, add_person

    enrolments = {
        CODES[0]: enrol_patient("bph", "operating_room", identity_code=CODES[0]),
        CODES[1]: enrol_patient("bph", "outpatient_clinic", identity_code=CODES[1]),
        CODES[2]: enrol_patient("older-adults", "outreach", identity_code=CODES[2]),
        CODES[3]: enrol_patient("older-adults", "client_guidance", identity_code=CODES[3]),
    }
    add_person(db.session, NewPerson(identity_code=CODES[4], first_name="Ei", last_name="Mukana"))
    db.session.commit()
    return enrolments


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def do_import(kind: str, data: bytes, **options: Any) -> imports.ImportOutcome:
    options.setdefault("pilot_code", PILOT_OF.get(kind, "bph"))
    outcome = run_import(
        db.session, kind=kind, data=data, filename=f"{kind}.csv", actor="tester", **options
    )
    db.session.commit()
    return outcome


def stored_rows(kind: str) -> int:
    model = MODEL_OF[kind]
    statement = select(func.count()).select_from(model)
    if model is CostItem:
        statement = statement.where(
            CostItem.kind == ("direct" if kind == "direct_costs" else "resource_use")
        )
    return int(db.session.scalar(statement) or 0)


# -- good files --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(
    "kind", ["procedures", "measurements", "resource_use", "direct_costs", "exposures"]
)
def test_every_kind_imports_from_csv_and_xlsx(people: dict[str, Any], kind: str, fmt: str) -> None:
    header, rows = good_rows(kind, TODAY)
    outcome = do_import(kind, file_bytes(fmt, header, rows))
    assert outcome.status == "stored", outcome.errors
    assert (outcome.rows_total, outcome.rows_stored, outcome.error_count) == (
        len(rows),
        len(rows),
        0,
    )
    assert stored_rows(kind) == len(rows)
    batch = db.session.get(ImportBatch, outcome.batch_id)
    assert batch is not None
    assert batch.status == "stored"
    assert batch.actor == "tester"
    assert len(batch.file_sha256) == 64
    model = MODEL_OF[kind]
    hashes = db.session.scalars(select(model.row_hash).where(model.import_batch_id == batch.id))
    assert all(h and len(h) == 64 for h in hashes)


def test_stored_values_are_normalised(people: dict[str, Any]) -> None:
    for kind in ("measurements", "resource_use", "direct_costs", "procedures"):
        header, rows = good_rows(kind, TODAY)
        assert do_import(kind, csv_bytes(header, rows)).status == "stored"
    day = TODAY - timedelta(days=10)
    measured = {m.measure_code: m for m in db.session.scalars(select(ClinicalMeasurement))}
    assert measured["qmax"].value_num == 12.5
    assert measured["qmax"].unit == "mL/s"
    assert measured["qmax"].measured_on == day
    assert measured["qmax"].source == "import"
    assert measured["psa"].unit == "µg/L"
    assert measured["clavien_dindo"].value_text == "IIIa"
    assert measured["clavien_dindo"].value_num is None
    assert measured["reoperation"].value_num == 0.0
    uses = {c.product_code: c for c in db.session.scalars(select(CostItem))}
    assert uses["UROLOGY_WARD_DAY"].quantity == 1.5
    assert uses["OR_MINUTE"].service_date == day
    direct = db.session.scalars(select(CostItem).where(CostItem.kind == "direct")).all()
    assert sorted(c.amount_eur for c in direct) == [99.9, 1250.5]
    procedures = {p.procedure_type: p for p in db.session.scalars(select(Procedure))}
    assert [p.performed_on for p in procedures.values()] == [day, day]
    assert procedures["turp"].drg_code == "11M06"
    assert procedures["rezum"].drg_code is None
    assert procedures["rezum"].setting == "outpatient_clinic"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_people_import_enrols_and_schedules_invitations(people: dict[str, Any], fmt: str) -> None:
    header, rows = good_rows("people", TODAY)
    before = count(Person)
    outcome = do_import("people", file_bytes(fmt, header, rows))
    assert outcome.status == "stored", outcome.errors
    assert outcome.rows_stored == 2
    assert count(Person) == before + 2
    enrolments = db.session.scalars(
        select(Enrolment).where(Enrolment.import_batch_id == outcome.batch_id)
    ).all()
    assert len(enrolments) == 2
    for enrolment in enrolments:
        assert enrolment.person.source == "import"
        assert enrolment.person.birth_year in (1940, 1938)
        invitations = db.session.scalars(
            select(Invitation).where(Invitation.enrolment_id == enrolment.id)
        ).all()
        assert len(invitations) == 3  # the BPH pilot's time points
    assert {e.person.sex for e in enrolments} == {"female", "male"}


def test_people_import_enrols_a_known_person_in_another_pilot(people: dict[str, Any]) -> None:
    data = csv_bytes(
        ["identity_code", "arm", "index_date"],
        [[CODES[4], "outreach", TODAY.isoformat()], [CODES[0], "client_guidance", TODAY]],
    )
    before = count(Person)
    outcome = do_import("people", data, pilot_code="older-adults")
    assert outcome.status == "stored"
    assert count(Person) == before  # both people existed; only enrolments are new
    assert outcome.rows_stored == 2


def test_people_import_takes_the_pilot_from_its_column(people: dict[str, Any]) -> None:
    data = csv_bytes(
        ["identity_code", "pilot", "arm", "index_date"],
        [[NEW_CODES[2], "older-adults", "outreach", TODAY]],
    )
    outcome = do_import("people", data, pilot_code=None)
    assert outcome.status == "stored"
    assert outcome.pilot_code == "older-adults"


def test_without_a_pilot_the_kind_or_the_people_tell_it(people: dict[str, Any]) -> None:
    """Two pilots are configured; the pilot is still clear when only one pilot defines what
    the kind refers to, or when the file's people are all enrolled in one pilot."""
    for kind, pilot in [("exposures", "older-adults"), ("procedures", "bph")]:
        header, rows = good_rows(kind, TODAY)
        outcome = do_import(kind, csv_bytes(header, rows), pilot_code=None)
        assert (outcome.status, outcome.pilot_code) == ("stored", pilot), kind
    header, rows = good_rows("resource_use", TODAY)  # resource use applies to both pilots
    outcome = do_import("resource_use", csv_bytes(header, rows), pilot_code=None)
    assert (outcome.status, outcome.pilot_code) == ("stored", "bph")
    older = [people[code].person.pseudonym for code in CODES[2:4]]
    data = csv_bytes(
        ["pseudonym", "product_code", "quantity", "service_date"],
        [[pseudonym, "HOME_CARE_VISIT", 1, TODAY] for pseudonym in older],
    )
    outcome = do_import("resource_use", data, pilot_code=None)
    assert (outcome.status, outcome.pilot_code) == ("stored", "older-adults")


def test_a_pilot_is_required_when_it_cannot_be_told(people: dict[str, Any]) -> None:
    header = ["identity_code", "product_code", "quantity", "service_date"]
    mixed = [[CODES[0], "OR_MINUTE", 1, TODAY], [CODES[2], "HOME_CARE_VISIT", 1, TODAY]]
    with pytest.raises(imports.ImportRefusedError) as refused:
        do_import("resource_use", csv_bytes(header, mixed), pilot_code=None)
    assert refused.value.code == "pilot_required"
    assert "--pilot" in str(refused.value)
    assert "enrolled in bph, older-adults" in str(refused.value)
    with pytest.raises(imports.ImportRefusedError) as refused:
        nobody = csv_bytes(header, [[CODES[4], "OR_MINUTE", 1, TODAY]])  # in no pilot
        do_import("resource_use", nobody, pilot_code=None)
    assert "none of the file's people is enrolled" in str(refused.value)
    people_header, new_people = good_rows("people", TODAY)  # no pilot column
    with pytest.raises(imports.ImportRefusedError) as refused:
        do_import("people", csv_bytes(people_header, new_people), pilot_code=None)
    assert refused.value.code == "pilot_required"
    with pytest.raises(imports.ImportRefusedError) as refused:
        do_import("resource_use", csv_bytes(header, mixed), pilot_code="nope")
    assert refused.value.code == "unknown_pilot"
    assert count(ImportBatch) == 0


# -- bad rows ----------------------------------------------------------------------------------

BAD_ROWS: list[tuple[str, list[str], list[Any], str, str]] = [
    # kind, header, the bad row, column, code
    (
        "resource_use",
        ["identity_code", "pseudonym", "product_code", "quantity", "service_date"],
        ["", "P-ZZZZZZ", "OR_MINUTE", "1", "2025-01-02"],
        "pseudonym",
        "unknown_person",
    ),
    (
        "resource_use",
        ["identity_code", "product_code", "quantity", "service_date"],
        [CODES[4], "OR_MINUTE", "1", "2025-01-02"],
        "identity_code",
        "unknown_person",
    ),
    (
        "resource_use",
        ["identity_code", "product_code", "quantity", "service_date"],
        [CODES[0], "NO_SUCH_PRODUCT", "1", "2025-01-02"],
        "product_code",
        "unknown_code",
    ),
    (
        "measurements",
        ["identity_code", "measure", "value", "unit", "measured_on"],
        [CODES[0], "qmax", "12", "mL", "2025-01-02"],
        "unit",
        "wrong_unit",
    ),
    (
        "measurements",
        ["identity_code", "measure", "value", "unit", "measured_on"],
        [CODES[0], "qmax", "75", "mL/s", "2025-01-02"],
        "value",
        "out_of_range",
    ),
    (
        "resource_use",
        ["identity_code", "product_code", "quantity", "service_date"],
        [CODES[0], "OR_MINUTE", "-3", "2025-01-02"],
        "quantity",
        "out_of_range",
    ),
    (
        "exposures",
        ["identity_code", "service_type", "provider_sector", "start_date", "end_date"],
        [CODES[2], "day_activity", "ngo", "2025-03-01", "2025-02-01"],
        "end_date",
        "date_order",
    ),
    (
        "procedures",
        ["identity_code", "procedure_type", "setting", "performed_on"],
        [CODES[0], "turp", "", "2025-01-02"],
        "setting",
        "missing",
    ),
    (
        "procedures",
        ["identity_code", "procedure_type", "setting", "performed_on"],
        ["010150-901X", "turp", "operating_room", "2025-01-02"],
        "identity_code",
        "invalid_identity_code",
    ),
    (
        "direct_costs",
        ["identity_code", "amount_eur", "price_year", "service_date"],
        [CODES[0], "12", "1850", "2025-01-02"],
        "price_year",
        "unknown_code",
    ),
    (
        "direct_costs",
        ["identity_code", "amount_eur", "price_year", "service_date"],
        [CODES[0], "kaksi", "2025", "2025-01-02"],
        "amount_eur",
        "not_a_number",
    ),
    (
        "procedures",
        ["identity_code", "procedure_type", "setting", "performed_on"],
        [CODES[0], "turp", "operating_room", "31.2.2025"],
        "performed_on",
        "not_a_date",
    ),
    (
        "people",
        ["identity_code", "arm", "index_date"],
        [NEW_CODES[0], "no_such_arm", "2025-01-02"],
        "arm",
        "unknown_code",
    ),
]


@pytest.mark.parametrize(("kind", "header", "bad", "column", "code"), BAD_ROWS)
def test_one_bad_row_rejects_the_file_and_names_line_column_value(
    people: dict[str, Any], kind: str, header: list[str], bad: list[Any], column: str, code: str
) -> None:
    good_header, good = good_rows(kind, TODAY)
    # good rows first (re-ordered to the bad row's header), then the bad row on line 4
    picked = [
        [row[good_header.index(name)] if name in good_header else "" for name in header]
        for row in good[:2]
    ]
    if kind == "people":
        picked = [[NEW_CODES[1], "operating_room", TODAY], [NEW_CODES[2], "operating_room", TODAY]]
    before = {k: stored_rows(k) for k in MODEL_OF}
    people_before, enrolments_before = count(Person), count(Enrolment)
    outcome = do_import(kind, csv_bytes(header, [*picked, bad]))
    assert outcome.status == "rejected"
    assert outcome.rows_stored == 0
    assert {k: stored_rows(k) for k in MODEL_OF} == before
    assert (count(Person), count(Enrolment)) == (people_before, enrolments_before)
    assert [(e.line, e.column, e.code) for e in outcome.errors] == [(4, column, code)]
    error = outcome.errors[0]
    shown = bad[header.index(column)]
    if column == "identity_code":
        assert error.value == "******-****"
    else:
        assert error.value == shown
    with force_locale("en"):
        message = imports.describe(error)
    assert message and message != code and "%(" not in message
    batch = db.session.get(ImportBatch, outcome.batch_id)
    assert batch is not None and batch.status == "rejected" and batch.error_count == 1
    assert batch.errors[0]["line"] == 4


def test_a_duplicate_row_in_the_file_is_an_error(people: dict[str, Any]) -> None:
    header, rows = good_rows("resource_use", TODAY)
    outcome = do_import("resource_use", csv_bytes(header, [*rows, rows[0]]))
    assert outcome.status == "rejected"
    assert [(e.line, e.code, e.params["first_line"]) for e in outcome.errors] == [
        (5, "duplicate", 2)
    ]
    assert stored_rows("resource_use") == 0


def test_the_same_person_twice_in_a_people_file_is_an_error(people: dict[str, Any]) -> None:
    data = csv_bytes(
        ["identity_code", "arm", "index_date"],
        [
            [NEW_CODES[0], "operating_room", TODAY],
            [NEW_CODES[0].lower(), "outpatient_clinic", TODAY],
        ],
    )
    outcome = do_import("people", data)
    assert [(e.line, e.column, e.code) for e in outcome.errors] == [
        (3, "identity_code", "duplicate")
    ]


def test_an_enrolled_person_with_another_arm_is_a_conflict(people: dict[str, Any]) -> None:
    index_date = people[CODES[0]].index_date
    data = csv_bytes(
        ["identity_code", "arm", "index_date"], [[CODES[0], "outpatient_clinic", index_date]]
    )
    outcome = do_import("people", data)
    assert [(e.column, e.code, e.params["reason"]) for e in outcome.errors] == [
        ("arm", "conflict", "enrolment")
    ]
    same = csv_bytes(
        ["identity_code", "arm", "index_date"], [[CODES[0], "operating_room", index_date]]
    )
    again = do_import("people", same)
    assert (again.status, again.rows_stored, again.rows_duplicate) == ("stored", 0, 1)


def test_header_problems_reject_the_file(people: dict[str, Any]) -> None:
    data = csv_bytes(
        ["identity_code", "product", "quantity", "service_date"], [[CODES[0], "X", 1, TODAY]]
    )
    outcome = do_import("resource_use", data)
    assert outcome.status == "rejected"
    assert {(e.line, e.column, e.code) for e in outcome.errors} == {
        (1, "product", "unknown_column"),
        (1, "product_code", "missing_column"),
    }


def test_a_kind_that_does_not_apply_to_the_pilot_is_refused(people: dict[str, Any]) -> None:
    header, rows = good_rows("exposures", TODAY)
    outcome = do_import("exposures", csv_bytes(header, rows), pilot_code="bph")
    assert {(e.code, e.params["what"]) for e in outcome.errors} == {
        ("kind_not_in_pilot", "service_types"),
        ("kind_not_in_pilot", "provider_sectors"),
    }


def test_errors_are_capped_but_counted(people: dict[str, Any]) -> None:
    rows = [[CODES[0], "OR_MINUTE", "x", TODAY] for _ in range(1500)]
    data = csv_bytes(["identity_code", "product_code", "quantity", "service_date"], rows)
    outcome = do_import("resource_use", data)
    assert outcome.error_count == 1500
    assert len(outcome.errors) == 1000
    assert outcome.errors[0].line == 2


# -- re-import, dry run, interruption ----------------------------------------------------------


ALL_KINDS = ["people", "procedures", "measurements", "resource_use", "direct_costs", "exposures"]


def another_row(kind: str) -> list[Any]:
    """One more valid row in the columns of ``good_rows(kind)``, not among its rows."""
    day = TODAY - timedelta(days=3)
    return {
        "people": [NEW_CODES[2], "Uuno", "Uusi", "male", "outpatient_clinic", day, ""],
        "procedures": [CODES[1], "turp", "operating_room", day, ""],
        "measurements": [CODES[1], "qmax", "9", "mL/s", day],
        "resource_use": [CODES[1], "LAB_PANEL", 1, day, ""],
        "direct_costs": [CODES[0], "10", 2025, day, ""],
        "exposures": [CODES[2], "friend_service", "parish", day, "", 2, ""],
    }[kind]


def stored_state(kind: str) -> tuple[int, ...]:
    """What an import of ``kind`` stores: its rows; for people, people, enrolments and their
    invitations."""
    if kind == "people":
        return (count(Person), count(Enrolment), count(Invitation))
    return (stored_rows(kind),)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_reimporting_a_file_stores_nothing_twice(people: dict[str, Any], kind: str) -> None:
    header, rows = good_rows(kind, TODAY)
    first = do_import(kind, csv_bytes(header, rows))
    assert (first.status, first.rows_stored, first.rows_duplicate) == ("stored", len(rows), 0)
    stored = stored_state(kind)
    # the same data again: as a semicolon CSV and as a workbook
    for data in (csv_bytes(header, rows, sep=";"), file_bytes("xlsx", header, rows)):
        again = do_import(kind, data)
        assert (again.status, again.rows_stored, again.rows_duplicate) == ("stored", 0, len(rows))
        assert stored_state(kind) == stored
    # a corrected file with one new row stores just that row
    more = do_import(kind, csv_bytes(header, [*rows, another_row(kind)]))
    assert (more.status, more.rows_stored, more.rows_duplicate) == ("stored", 1, len(rows))
    assert stored_state(kind) != stored
    if kind != "people":
        assert stored_rows(kind) == len(rows) + 1


@pytest.mark.parametrize(
    ("kind", "tables"),
    [("people", {"people", "enrolments", "invitations"}), ("resource_use", {"cost_items"})],
)
def test_a_large_import_refreshes_the_planner_statistics_of_its_tables(
    people: dict[str, Any], kind: str, tables: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until autovacuum catches up, PostgreSQL would plan the reads right after an import
    (an export, an analysis) on the old row counts: at 20 000 people a wide export then took
    more than eight minutes per chunk instead of milliseconds."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: autovacuum's statistics lag behind a bulk load")
    monkeypatch.setattr(bulk, "BULK_ROWS", 1)  # the test's files are small; the rule is the same
    assert not tables & analysed_tables(db.session)
    header, rows = good_rows(kind, TODAY)
    assert do_import(kind, csv_bytes(header, rows)).status == "stored"
    assert tables <= analysed_tables(db.session)


def test_dry_run_checks_and_logs_but_stores_nothing(people: dict[str, Any]) -> None:
    header, rows = good_rows("measurements", TODAY)
    outcome = do_import("measurements", csv_bytes(header, rows), dry_run=True)
    assert (outcome.status, outcome.dry_run, outcome.rows_total, outcome.rows_stored) == (
        "checked",
        True,
        4,
        0,
    )
    assert stored_rows("measurements") == 0
    batch = db.session.get(ImportBatch, outcome.batch_id)
    assert batch is not None and batch.dry_run and batch.status == "checked"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "import_dry_run"))
    assert event is not None and event.details["status"] == "checked"
    real = do_import("measurements", csv_bytes(header, rows))
    assert real.rows_stored == 4


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_an_import_interrupted_while_storing_leaves_nothing(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Storing fails after the first rows went in (one row per insert statement here, so the
    second statement fails after writing its row; for people the second enrolment fails after
    the first person, enrolment and invitations were written): nothing is left, the batch is
    logged as failed and running the import again stores every row."""
    header, rows = good_rows(kind, TODAY)
    before = stored_state(kind)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    calls = {"n": 0}
    real_insert, real_enrol = imports.bulk_insert, imports.enrol

    def failing_insert(session: Any, table: Any, frame: pd.DataFrame) -> None:
        calls["n"] += 1
        real_insert(session, table, frame)
        if calls["n"] == 2:
            raise RuntimeError("disk full")

    def failing_enrol(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("connection lost")
        return real_enrol(*args, **kwargs)

    monkeypatch.setattr(imports, "bulk_insert", failing_insert)
    monkeypatch.setattr(imports, "enrol", failing_enrol)
    outcome = do_import(kind, csv_bytes(header, rows))
    assert calls["n"] == 2  # it did fail half-way
    assert outcome.status == "failed"
    assert [e.code for e in outcome.errors] == ["import_failed"]
    assert stored_state(kind) == before
    batch = db.session.get(ImportBatch, outcome.batch_id)
    assert batch is not None and batch.status == "failed" and batch.rows_stored == 0

    monkeypatch.setattr(imports, "bulk_insert", real_insert)
    monkeypatch.setattr(imports, "enrol", real_enrol)
    again = do_import(kind, csv_bytes(header, rows))
    assert (again.status, again.rows_stored, again.rows_duplicate) == ("stored", len(rows), 0)
    if kind != "people":
        assert stored_rows(kind) == len(rows)


# -- the identity code is never stored ---------------------------------------------------------


def test_identity_codes_never_reach_the_database(people: dict[str, Any]) -> None:
    header, rows = good_rows("people", TODAY)
    do_import("people", csv_bytes(header, rows), dry_run=True)
    do_import("people", csv_bytes(header, rows))
    bad = [["120940-904X", "operating_room", TODAY], [NEW_CODES[2], "nope", TODAY]]
    do_import("people", csv_bytes(["identity_code", "arm", "index_date"], bad))
    note = [[CODES[0], "100", "2025", TODAY, f"potilas {CODES[0]}"]]
    rejected = do_import(
        "direct_costs",
        csv_bytes(
            ["identity_code", "amount_eur", "price_year", "service_date", "description"], note
        ),
    )
    assert [e.code for e in rejected.errors] == ["contains_identity_code"]
    do_import("resource_use", csv_bytes(["identity_code"], [[CODES[1]]]))
    db.session.commit()
    clear = {code.upper() for code in (*CODES, *NEW_CODES, "120940-904X")}
    digits = {code[:6] + code[7:10] for code in clear}
    leaks = [
        (table, column, value)
        for table, column, value in text_values(db.session)
        if any(c in value.upper() for c in clear) or any(d in value for d in digits)
    ]
    assert leaks == []


# -- the shipped example files ------------------------------------------------------------------

EXAMPLES = PROJECT_ROOT / "docs" / "examples" / "imports"


def test_the_example_files_import_cleanly(app: Flask) -> None:
    order = [
        ("people", "people.csv", "bph"),
        ("people", "people-older-adults.csv", "older-adults"),
        ("procedures", "procedures.csv", "bph"),
        ("measurements", "measurements.csv", "bph"),
        ("resource_use", "resource_use.csv", "bph"),
        ("direct_costs", "direct_costs.csv", "bph"),
        ("exposures", "exposures.csv", "older-adults"),
    ]
    for kind, name, pilot in order:
        data = (EXAMPLES / name).read_bytes()
        outcome = do_import(kind, data, pilot_code=pilot, today=date(2025, 12, 1))
        assert outcome.status == "stored", (name, outcome.errors)
        assert outcome.rows_stored == outcome.rows_total > 0, name
    # the workbook holds the same rows as resource_use.csv: all of them are already stored
    again = do_import(
        "resource_use", (EXAMPLES / "resource_use.xlsx").read_bytes(), today=date(2025, 12, 1)
    )
    assert (again.status, again.rows_stored, again.rows_duplicate) == ("stored", 0, 18)
