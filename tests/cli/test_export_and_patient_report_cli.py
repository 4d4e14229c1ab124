"""``vaikuttavuus export`` and ``vaikuttavuus report patient``: files written (owner-only), the
same content as the web exports, audit events with the parameters and row counts."""

from __future__ import annotations

import csv
import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import select

from tests.db.test_exports_service import FORMULA, store_response
from vaikuttavuus.cli.exports import export_command
from vaikuttavuus.cli.patient_report import patient_command
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent
from vaikuttavuus.security.tokens import keyed_hash


def invoke(runner: Any, command: Any, *args: str) -> Result:
    return runner.invoke(command, list(args), catch_exceptions=False)  # type: ignore[no-any-return]


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def people(app: Flask, enrol_patient: Any) -> list[Any]:
    found = []
    for n, language in enumerate(("fi", "sv", "en")):
        enrolment = enrol_patient(
            index_offset_days=-120, last_name=f"Komentorivi{n}", preferred_language=language
        )
        store_response(
            enrolment,
            "baseline",
            "ipss",
            {f"ipss{k}": (k + n) % 6 for k in range(1, 8)} | {"ipss_qol": 2},
        )
        found.append(enrolment)
    store_response(found[0], "m3", "prem_bph", {"overall": 5, "improve": FORMULA})
    return found


def owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_export_csv_writes_data_and_dictionary(
    runner: Any, people: list[Any], tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "bph-long.csv"
    result = invoke(
        runner, export_command, "--pilot", "bph", "--shape", "long", "--date-shift", "10",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 3 * 8 + 2
    assert f"Wrote {len(rows)} rows" in result.output
    assert {row["person_key"] for row in rows} == {
        keyed_hash(str(p.person_id), "export") for p in people
    }
    assert next(r for r in rows if r["item_id"] == "improve")["value"] == "'" + FORMULA
    dictionary = tmp_path / "exports" / "bph-long.dictionary.csv"
    entries = list(csv.DictReader(dictionary.read_text(encoding="utf-8-sig").splitlines()))
    assert [e["column"] for e in entries if not e["column"].startswith("item_id =")] == list(
        rows[0]
    )
    assert owner_only(out) and owner_only(dictionary)
    (event,) = events("export_data")
    assert event.actor.startswith("cli:")
    assert event.details == {
        "format": "csv",
        "shape": "long",
        "rows": len(rows),
        "date_shift_days": 10,
        "from": None,
        "to": None,
        "dictionary": "bph-long.dictionary.csv",
    }


def test_export_xlsx_and_fhir(runner: Any, people: list[Any], tmp_path: Path) -> None:
    from fhir.resources.R4B.bundle import Bundle

    workbook_path = tmp_path / "wide.xlsx"
    result = invoke(
        runner, export_command, "--pilot", "bph", "--shape", "wide", "--format", "xlsx",
        "--lang", "fi", "--out", str(workbook_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    workbook = load_workbook(workbook_path)
    assert workbook.sheetnames == ["data", "dictionary"]
    assert workbook["data"].max_row == 4
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)
    assert owner_only(workbook_path)
    assert events("export_data")[-1].details["rows"] == 3

    bundle_path = tmp_path / "responses.json"
    result = invoke(
        runner, export_command, "--pilot", "bph", "--format", "fhir", "--out", str(bundle_path)
    )
    assert result.exit_code == 0, result.output
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    assert len(bundle["entry"]) == 4
    (event,) = events("export_fhir")
    assert event.details["rows"] == 4


def test_export_refuses_unknown_pilots_and_bad_options(
    runner: Any, people: list[Any], tmp_path: Path
) -> None:
    out = tmp_path / "x.csv"
    result = invoke(runner, export_command, "--pilot", "nope", "--out", str(out))
    assert result.exit_code == 2 and "No pilot" in result.output
    result = invoke(
        runner, export_command, "--pilot", "bph", "--date-shift", "999", "--out", str(out)
    )
    assert result.exit_code == 2
    result = invoke(
        runner, export_command, "--pilot", "bph", "--from", "2025-06-01", "--to", "2025-01-01",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 2
    assert not out.exists()
    assert events("export_data") == []


def test_export_is_registered_with_the_cli() -> None:
    from vaikuttavuus.cli import main

    assert main.commands["export"] is export_command


# -- the patient summary --------------------------------------------------------------------------


def pdf_words(path: Path) -> str:
    assert shutil.which("pdftotext"), "install poppler-utils"
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("index", "lang", "marker"),
    [
        (0, None, "Ennen toimenpidettä"),  # the patient's own language, Finnish
        (1, None, "Före åtgärden"),  # Swedish
        (2, None, "Before the procedure"),  # English
        (0, "sv", "Före åtgärden"),  # chosen
    ],
)
def test_report_patient_writes_the_summary_in_the_right_language(
    runner: Any, people: list[Any], tmp_path: Path, index: int, lang: str | None, marker: str
) -> None:
    enrolment = people[index]
    out = tmp_path / "summary.pdf"
    args = ["--pilot", "bph", "--pseudonym", enrolment.person.pseudonym, "--out", str(out)]
    if lang:
        args += ["--lang", lang]
    result = invoke(runner, patient_command, *args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    assert owner_only(out)
    words = pdf_words(out)
    assert marker in words
    assert f"Komentorivi{index}" in words
    (event,) = events("export_patient_summary")
    assert event.person_id == enrolment.person_id and event.actor.startswith("cli:")
    assert event.details["language"] == (lang or ("fi", "sv", "en")[index])


def test_report_patient_refuses_unknown_patients(
    runner: Any, people: list[Any], tmp_path: Path
) -> None:
    out = tmp_path / "s.pdf"
    result = invoke(
        runner, patient_command, "--pilot", "bph", "--pseudonym", "P-NOBODY", "--out", str(out)
    )
    assert result.exit_code == 2 and "No patient" in result.output
    result = invoke(
        runner, patient_command, "--pilot", "older-adults",
        "--pseudonym", people[0].person.pseudonym, "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 2
    assert not out.exists() and events("export_patient_summary") == []


def test_report_patient_through_the_report_group(
    runner: Any, people: list[Any], tmp_path: Path
) -> None:
    """``vaikuttavuus report patient`` once the ``report`` group has attached the command."""
    from vaikuttavuus.cli import main

    group = main.commands.get("report")
    assert group is not None and "patient" in getattr(group, "commands", {})
    out = tmp_path / "via-group.pdf"
    result = runner.invoke(
        main,
        ["report", "patient", "--pilot", "bph", "--pseudonym", people[1].person.pseudonym,
         "--out", str(out)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Före åtgärden" in pdf_words(out)
