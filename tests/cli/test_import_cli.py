"""``vaikuttavuus import``: templates, good and bad files, dry run, re-import, the report, and a
process killed in the middle of storing (nothing partial; a re-run completes)."""

from __future__ import annotations

import csv
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from tests.support.import_files import CODES, csv_bytes, good_rows, xlsx_bytes
from tests.support.knee_pilot import definition_folders
from vaikuttavuus.cli import main
from vaikuttavuus.cli.imports import CHECKING_LABEL, PROGRESS_MIN_ROWS, STORING_LABEL
from vaikuttavuus.extensions import db
from vaikuttavuus.models import CostItem, ImportBatch

TODAY = date.today()


@pytest.fixture
def enrolled(app: Flask, enrol_patient: Any) -> list[Any]:
    return [
        enrol_patient("bph", "operating_room", identity_code=CODES[0]),
        enrol_patient("bph", "outpatient_clinic", identity_code=CODES[1]),
    ]


def invoke(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(main, list(args))
    db.session.rollback()  # see what the command committed
    return result


def cost_rows() -> int:
    return int(db.session.scalar(select(func.count()).select_from(CostItem)) or 0)


def test_template_prints_the_documented_header() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["import", "template", "resource_use"])
    assert result.exit_code == 0
    assert (
        result.output == "identity_code,pseudonym,product_code,quantity,service_date,cost_centre\n"
    )
    example = runner.invoke(main, ["import", "template", "measurements", "--with-example"])
    lines = example.output.splitlines()
    assert lines[0] == "identity_code,pseudonym,measure,value,unit,measured_on,time_point"
    assert lines[1].startswith("010150-901D,,qmax,")
    unknown = runner.invoke(main, ["import", "template", "nope"])
    assert unknown.exit_code == 2


def test_template_examples_come_from_the_pilot_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--pilot``: the example row's arm, procedure type and setting are the pilot's own (the
    test suite's knee pilot: its reference arm and the setting that arm allows)."""
    for name, folder in definition_folders(tmp_path).items():
        monkeypatch.setenv(name, str(folder))
    runner = CliRunner()

    def example(kind: str, pilot: str) -> str:
        arguments = ["import", "template", kind, "--with-example", "--pilot", pilot]
        result = runner.invoke(main, arguments)
        assert result.exit_code == 0, result.output
        return str(result.output.splitlines()[1])

    assert ",knee,inpatient," in example("people", "knee")
    assert example("procedures", "knee").startswith("010150-901D,,tka,inpatient_theatre,")
    assert example("procedures", "bph").startswith("010150-901D,,turp,operating_room,")
    unknown = runner.invoke(main, ["import", "template", "people", "--pilot", "nope"])
    assert unknown.exit_code == 2 and "unknown pilot 'nope'" in unknown.output


def test_help_shows_both_forms() -> None:
    result = CliRunner().invoke(main, ["import", "--help"])
    assert result.exit_code == 0
    assert "import KIND FILE" in result.output and "import template KIND" in result.output


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_good_file_is_stored_and_a_second_run_stores_nothing(
    app: Flask, enrolled: list[Any], tmp_path: Path, fmt: str
) -> None:
    header, rows = good_rows("resource_use", TODAY)
    path = tmp_path / f"costs.{fmt}"
    path.write_bytes(xlsx_bytes(header, rows) if fmt == "xlsx" else csv_bytes(header, rows))
    first = invoke(app, "import", "resource_use", str(path), "--pilot", "bph")
    assert first.exit_code == 0, first.output
    assert "3 row(s) stored into bph, 0 already stored" in first.stdout
    assert cost_rows() == 3
    again = invoke(app, "import", "resource_use", str(path), "--pilot", "bph")
    assert again.exit_code == 0
    assert "0 row(s) stored into bph, 3 already stored" in again.stdout
    assert cost_rows() == 3
    batches = db.session.scalars(select(ImportBatch).order_by(ImportBatch.id)).all()
    assert [b.status for b in batches] == ["stored", "stored"]
    assert batches[0].actor.startswith("cli:")


def test_the_pilot_can_be_left_out_only_when_it_is_clear(
    app: Flask, enrolled: list[Any], enrol_patient: Any, tmp_path: Path
) -> None:
    header, rows = good_rows("resource_use", TODAY)  # people of the BPH pilot only
    path = tmp_path / "costs.csv"
    path.write_bytes(csv_bytes(header, rows))
    told = invoke(app, "import", "resource_use", str(path))
    assert told.exit_code == 0, told.output
    assert "3 row(s) stored into bph" in told.stdout
    assert "Pilot bph: the only pilot this file can be for" in told.stderr
    # exposures are for the older adults pilot only (the one with service types)
    enrol_patient("older-adults", "outreach", identity_code=CODES[2])
    enrol_patient("older-adults", "client_guidance", identity_code=CODES[3])
    header, rows = good_rows("exposures", TODAY)
    exposures = tmp_path / "exposures.csv"
    exposures.write_bytes(csv_bytes(header, rows))
    result = invoke(app, "import", "exposures", str(exposures), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 row(s) checked, no errors" in result.stdout
    assert "Pilot older-adults" in result.stderr
    # people of both pilots in one file: the pilot must be named
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        csv_bytes(
            ["identity_code", "product_code", "quantity", "service_date"],
            [[CODES[0], "OR_MINUTE", 1, TODAY], [CODES[2], "HOME_CARE_VISIT", 1, TODAY]],
        )
    )
    before = cost_rows()
    result = invoke(app, "import", "resource_use", str(mixed))
    assert result.exit_code == 2
    assert "name the pilot (--pilot)" in result.output
    assert "enrolled in bph, older-adults" in result.output
    unknown = invoke(app, "import", "resource_use", str(path), "--pilot", "nope")
    assert unknown.exit_code == 2 and "unknown pilot" in unknown.output
    assert cost_rows() == before


def test_usage_errors_point_to_the_import_help(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_bytes(b"identity_code\n")
    for args in (["import", "nope", str(path)], ["import", "people"]):
        result = CliRunner().invoke(main, args, prog_name="vaikuttavuus")
        assert result.exit_code == 2
        assert "Try 'vaikuttavuus import --help' for help." in result.output
        assert "import file" not in result.output
        assert "vaikuttavuus import KIND FILE" in result.output
    assert CliRunner().invoke(main, ["import", "--help"]).exit_code == 0


def test_a_bad_file_exits_1_with_a_row_report(
    app: Flask, enrolled: list[Any], tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(
        csv_bytes(
            ["identity_code", "product_code", "quantity", "service_date"],
            [
                [CODES[0], "OR_MINUTE", "10", TODAY],
                [CODES[0], "NOPE", "10", TODAY],
                ["010150-901X", "OR_MINUTE", "-1", TODAY],
            ],
        )
    )
    report = tmp_path / "errors.csv"
    result = invoke(
        app, "import", "resource_use", str(path), "--pilot", "bph", "--report", str(report)
    )
    assert result.exit_code == 1
    assert "3 error(s) in 3 row(s); nothing was stored." in result.stderr
    assert "line 3, column product_code ('NOPE'): Not an allowed value." in result.stderr
    assert "line 4, column identity_code ('******-****')" in result.stderr
    assert "010150-901X" not in result.stderr + result.stdout
    assert cost_rows() == 0
    rows = list(csv.reader(report.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()))
    assert rows[0] == ["line", "column", "value", "code", "message"]
    assert [row[:4] for row in rows[1:]] == [
        ["3", "product_code", "NOPE", "unknown_code"],
        ["4", "identity_code", "******-****", "invalid_identity_code"],
        ["4", "quantity", "'-1", "out_of_range"],
    ]
    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None and batch.status == "rejected" and batch.error_count == 3


def test_messages_in_finnish(app: Flask, enrolled: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes(["identity_code", "product_code"], [[CODES[0], "OR_MINUTE"]]))
    english = invoke(app, "import", "resource_use", str(path), "--pilot", "bph")
    finnish = invoke(app, "import", "resource_use", str(path), "--pilot", "bph", "--lang", "fi")
    assert english.exit_code == finnish.exit_code == 1
    assert "This required column is missing from the header." in english.stderr
    assert "line 1, column quantity" in finnish.stderr


def test_dry_run_stores_nothing(app: Flask, enrolled: list[Any], tmp_path: Path) -> None:
    header, rows = good_rows("resource_use", TODAY)
    path = tmp_path / "costs.csv"
    path.write_bytes(csv_bytes(header, rows))
    result = invoke(app, "import", "--dry-run", "resource_use", str(path), "--pilot", "bph")
    assert result.exit_code == 0, result.output
    assert "3 row(s) checked, no errors; 3 would be stored" in result.stdout
    assert cost_rows() == 0
    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None and batch.dry_run and batch.status == "checked"


def test_large_files_show_progress_while_checking_and_storing(
    app: Flask, enrolled: list[Any], tmp_path: Path
) -> None:
    pseudonyms = [e.person.pseudonym for e in enrolled]
    rows = [
        [pseudonyms[i % 2], "NURSE_PHONE", str(1 + i), TODAY - timedelta(days=1 + i % 5)]
        for i in range(PROGRESS_MIN_ROWS)
    ]
    path = tmp_path / "large.csv"
    path.write_bytes(csv_bytes(["pseudonym", "product_code", "quantity", "service_date"], rows))
    dry = invoke(app, "import", "resource_use", str(path), "--pilot", "bph", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert CHECKING_LABEL in dry.stderr
    assert STORING_LABEL not in dry.stderr
    stored = invoke(app, "import", "resource_use", str(path), "--pilot", "bph")
    assert stored.exit_code == 0, stored.output
    assert f"{PROGRESS_MIN_ROWS} row(s) stored into bph" in stored.stdout
    assert stored.stderr.index(CHECKING_LABEL) < stored.stderr.index(STORING_LABEL)
    # a small file: no progress bars
    header, small = good_rows("resource_use", TODAY)
    path.write_bytes(csv_bytes(header, small))
    quiet = invoke(app, "import", "resource_use", str(path), "--pilot", "bph", "--dry-run")
    assert quiet.exit_code == 0
    assert CHECKING_LABEL not in quiet.stderr


# -- a process killed while storing -------------------------------------------------------------


def _environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAIKUTTAVUUS_")}
    env.update(
        {
            "VAIKUTTAVUUS_INSTANCE": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "PSEUDONYM_KEY": "test-pseudonym-key",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def test_a_killed_import_leaves_nothing_and_a_rerun_completes(
    app: Flask, database_url: str, enrolled: list[Any], tmp_path: Path
) -> None:
    pseudonyms = [e.person.pseudonym for e in enrolled]
    products = ["OR_MINUTE", "NURSE_PHONE", "LAB_PANEL"]
    rows = [
        [pseudonyms[i % 2], products[i % 3], str(1 + i // 6), TODAY - timedelta(days=1 + i % 5)]
        for i in range(150_000)
    ]
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(["pseudonym", "product_code", "quantity", "service_date"], rows))
    command = [
        sys.executable,
        "-m",
        "vaikuttavuus.cli",
        "import",
        "resource_use",
        str(path),
        "--pilot",
        "bph",
    ]
    env = _environment(database_url, tmp_path)
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        stderr = process.stderr
        lines: queue.Queue[str] = queue.Queue()
        # Read in a thread, so that an import that prints nothing (waiting on a lock) cannot
        # hang the test: the deadline below always holds.
        threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()
        deadline = time.monotonic() + 600
        seen = ""
        while "Storing" not in seen and time.monotonic() < deadline:
            try:
                seen += lines.get(timeout=1)
            except queue.Empty:
                if process.poll() is not None:
                    break
        # the first 50 000 rows are in the open transaction now
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert "Storing" in seen, seen
    assert process.returncode == -signal.SIGKILL

    db.session.rollback()
    assert cost_rows() == 0
    assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0

    rerun = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "150000 row(s) stored into bph" in rerun.stdout
    db.session.rollback()
    assert cost_rows() == 150_000
