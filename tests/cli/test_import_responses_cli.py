"""``vaikuttavuus import responses``: the template with its example, a CSV and a FHIR Bundle
stored (exit 0), a rejected file with its report (exit 1, Finnish messages), the window
switch, and usage problems (exit 2)."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from tests.support.import_files import CODES, csv_bytes
from vaikuttavuus.cli import main
from vaikuttavuus.extensions import db
from vaikuttavuus.models import ImportBatch, Pilot, Response
from vaikuttavuus.services.exports import ExportOptions, fhir_bundle

TODAY = date.today()
DAY = TODAY - timedelta(days=110)  # in the baseline window of people indexed 100 days ago
IPSS = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"]
HEADER = ["identity_code", "time_point", "instrument", "completed_on", "mode", *IPSS]


@pytest.fixture
def enrolled(app: Flask, enrol_patient: Any) -> list[Any]:
    return [
        enrol_patient("bph", "operating_room", -100, identity_code=CODES[0]),
        enrol_patient("bph", "outpatient_clinic", -100, identity_code=CODES[1]),
    ]


def invoke(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(main, list(args))
    db.session.rollback()  # see what the command committed
    return result


def responses() -> int:
    return int(db.session.scalar(select(func.count()).select_from(Response)) or 0)


def test_template_lists_the_items_and_an_example_for_a_pilot() -> None:
    runner = CliRunner()
    every = runner.invoke(main, ["import", "template", "responses"]).output.splitlines()
    assert every[0].startswith(
        "identity_code,pseudonym,time_point,instrument,completed_on,instrument_version,mode,"
        "proxy,language,ipss1,"
    )
    assert "ucla1" in every[0] and "safe_daily" in every[0]
    older = runner.invoke(
        main, ["import", "template", "responses", "--with-example", "--pilot", "older-adults"]
    )
    assert older.exit_code == 0
    header, example = older.output.splitlines()
    assert "ipss1" not in header
    row = dict(zip(header.split(","), example.split(","), strict=True))
    assert (row["time_point"], row["instrument"], row["mode"]) == ("baseline", "ucla3", "paper")
    assert row["ucla1"] and not row["djg1"]
    unknown = runner.invoke(main, ["import", "template", "responses", "--pilot", "nope"])
    assert unknown.exit_code == 2


def test_a_csv_is_stored_then_skipped_and_a_bad_one_rejected_with_a_report(
    app: Flask, enrolled: list[Any], tmp_path: Path
) -> None:
    path = tmp_path / "answers.csv"
    path.write_bytes(
        csv_bytes(
            HEADER,
            [
                [CODES[0], "baseline", "ipss", DAY, "paper", 1, 2, 3, 4, 5, 0, 1, 2],
                [
                    CODES[1],
                    "baseline",
                    "ipss",
                    DAY.strftime("%d.%m.%Y"),
                    "",
                    0,
                    0,
                    0,
                    "",
                    1,
                    1,
                    1,
                    0,
                ],
            ],
        )
    )
    first = invoke(app, "import", "responses", str(path), "--pilot", "bph")
    assert first.exit_code == 0, first.output
    assert "2 row(s) stored into bph, 0 already stored" in first.stdout
    assert "1 note(s)" in first.stderr and "ipss4" in first.stderr
    again = invoke(app, "import", "responses", str(path))  # the pilot: the people's only one
    assert again.exit_code == 0, again.output
    assert "0 row(s) stored into bph, 2 already stored" in again.stdout
    assert responses() == 2

    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        csv_bytes(
            HEADER,
            [
                [CODES[0], "m3", "ipss", TODAY - timedelta(days=30), "", *[1] * 8],
                [CODES[1], "m3", "ipss", TODAY - timedelta(days=30), "", 9, *[1] * 7],
                [CODES[1], "m3", "ipss", TODAY - timedelta(days=200), "", *[1] * 8],
            ],
        )
    )
    report = tmp_path / "report.csv"
    rejected = invoke(
        app, "import", "responses", str(bad), "--pilot", "bph", "--report", str(report),
        "--lang", "fi",
    )  # fmt: skip
    assert rejected.exit_code == 1
    assert "3 row(s); nothing was stored" in rejected.stderr
    rows = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert [r[:4] for r in rows[1:]] == [
        ["3", "ipss1", "9", "unknown_code"],
        ["4", "completed_on", (TODAY - timedelta(days=200)).isoformat(), "outside_window"],
    ]
    assert "Sallitut" in rows[1][4] or "sallittu" in rows[1][4].lower()
    assert responses() == 2

    # the window check can be waived, and the batch says so
    late = tmp_path / "late.csv"
    late.write_bytes(
        csv_bytes(HEADER, [[CODES[1], "m3", "ipss", TODAY - timedelta(days=200), "", *[1] * 8]])
    )
    waived = invoke(
        app, "import", "responses", str(late), "--pilot", "bph", "--allow-outside-window"
    )
    assert waived.exit_code == 0, waived.output
    batch = db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc())).first()
    assert batch is not None and batch.allow_outside_window
    assert responses() == 3


def test_a_fhir_bundle_export_imports_back(app: Flask, enrolled: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_bytes(
        csv_bytes(HEADER, [[CODES[0], "baseline", "ipss", DAY, "phone", 1, 2, 3, 4, 5, 0, 1, 2]])
    )
    assert invoke(app, "import", "responses", str(path), "--pilot", "bph").exit_code == 0
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    bundle = tmp_path / "bundle.json"
    bundle.write_text("".join(fhir_bundle(db.session, pilot, ExportOptions())), encoding="utf-8")
    resource = json.loads(bundle.read_text())["entry"][0]["resource"]
    assert resource["subject"]["reference"].startswith("Patient/")
    result = invoke(app, "import", "responses", str(bundle), "--pilot", "bph", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 row(s) checked, no errors; 0 would be stored, 1 already stored" in result.stdout


def test_usage_problems_exit_with_2(app: Flask, enrolled: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_bytes(b"pseudonym,product_code,quantity,service_date\n")
    misplaced = invoke(app, "import", "resource_use", str(path), "--allow-outside-window")
    assert misplaced.exit_code == 2
    assert "only for questionnaire answers" in misplaced.output
    unknown = invoke(app, "import", "responses", str(path), "--pilot", "nope")
    assert unknown.exit_code == 2
