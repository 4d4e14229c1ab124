"""``vaikuttavuus report management | board-pack | table | mixed-model`` and the attached
``patient``."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select

from tests.support.cohort_data import TODAY, cohort_app, cohort_template  # noqa: F401
from vaikuttavuus import queries
from vaikuttavuus.cli import main
from vaikuttavuus.cli.reports import report
from vaikuttavuus.domain.periods import GridPeriod, release_date
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.cohort_tables import TableRequest, cohort_table, to_csv
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.management_report import key_figures, released_cohort

N_BOOT = 200


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(report, list(args))  # type: ignore[no-any-return]


def pdf_text(path: Path) -> str:
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    text = text.replace("\xa0", " ").replace("-", "")
    return re.sub(r"\s+", " ", text)


@pytest.mark.skipif(
    shutil.which("pdftotext") is None and bool(os.environ.get("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS")),
    reason="needs poppler-utils (scripts/test installs it; a missing tool fails unless allowed)",
)
def test_management_summary_of_a_grid_period_to_a_file(cohort_app: Flask, tmp_path: Path) -> None:  # noqa: F811
    """``--period 2025Q3`` (a quarter; also half-years and years) from the release seen on
    ``--as-of``: the PDF has the page's key figures and the caveat, and the export is audited
    with the period and the release."""
    release = release_date(TODAY)
    period = GridPeriod.quarter_of(release)  # the release's own quarter is not released yet
    out = tmp_path / "johto" / "bph-en.pdf"
    refused = invoke(
        cohort_app, "management", "--pilot", "bph", "--lang", "en", "--out", str(out),
        "--period", period.code,
    )  # fmt: skip
    assert refused.exit_code == 2 and "not released yet" in refused.output
    assert not out.exists()
    quarter = GridPeriod.quarter_of(release - timedelta(days=200))
    result = invoke(
        cohort_app, "management", "--pilot", "bph", "--lang", "en", "--out", str(out),
        "--bootstrap", str(N_BOOT), "--period", quarter.code.lower(),
        "--as-of", TODAY.isoformat(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"Wrote the management summary of bph, {quarter.label} (en, release of "
        f"{release.isoformat()}) to {out}"
    ) in result.output
    assert out.read_bytes().startswith(b"%PDF-")
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    cohort = released_cohort(db.session, pilot, quarter, release, n_boot=N_BOOT)
    with cohort_app.test_request_context(), force_locale("en"):
        figures = key_figures(cohort, Labels(cohort.analysis, "en"))
    text = pdf_text(out)
    assert "Procedures for benign prostatic hyperplasia" in text
    for row in figures.rows:
        label = re.sub(r"\s+", " ", row[0].text.replace("\xa0", " ").replace("-", ""))
        assert label in text, label
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "export_pdf"
    assert event.actor.startswith("cli:") and event.details["language"] == "en"
    assert event.details["period"] == quarter.code
    assert event.details["release"] == release.isoformat()


def test_the_board_pack_and_finnish_by_default(cohort_app: Flask, tmp_path: Path) -> None:  # noqa: F811
    """Without ``--period``: the newest released year; Finnish; both pilots in one PDF."""
    out = tmp_path / "pack.pdf"
    result = invoke(cohort_app, "board-pack", "--out", str(out), "--bootstrap", str(N_BOOT))
    assert result.exit_code == 0, result.output
    assert "(fi, release of" in result.output
    year = str(release_date(TODAY).year - 1)
    assert f"board pack of {year} " in result.output
    assert out.read_bytes().startswith(b"%PDF-")
    (event,) = db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "board_pack")
    ).all()
    assert event.details["pilots"] == ["bph", "older-adults"] and event.object_id == year


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--period", "2025-01-01:2025-03-31"), "is not a quarter, half-year or year"),
        (("--period", "2025Q5"), "is not a quarter, half-year or year"),
        (("--period", "2099"), "not released yet"),
        (("--lang", "de"), "'de' is not one of"),
        (("--time-point", "baseline"), "--time-point must be a follow-up of bph: m3, m12"),
    ],
)
def test_bad_options_are_refused(
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
    arguments: tuple[str, ...],
    message: str,
) -> None:
    out = tmp_path / "x.pdf"
    result = invoke(cohort_app, "management", "--pilot", "bph", "--out", str(out), *arguments)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_unknown_pilot(cohort_app: Flask, tmp_path: Path) -> None:  # noqa: F811
    result = invoke(cohort_app, "management", "--pilot", "nope", "--out", str(tmp_path / "x.pdf"))
    assert result.exit_code == 2 and "No pilot 'nope'" in result.output


def test_table_prints_the_pages_csv(cohort_app: Flask, tmp_path: Path) -> None:  # noqa: F811
    result = invoke(
        cohort_app, "table", "--pilot", "bph", "--name", "inmb", "--effect", "responder",
        "--bootstrap", str(N_BOOT), "--arm", "",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    table = cohort_table(
        CohortAnalysis(db.session, pilot, Filters(), n_boot=N_BOOT),
        "inmb",
        TableRequest(effect="responder"),
    )
    assert table is not None
    assert result.output == to_csv(table).removeprefix("\ufeff").replace("\r\n", "\n")
    out = tmp_path / "inmb.csv"
    written = invoke(
        cohort_app, "table", "--pilot", "bph", "--name", "inmb", "--effect", "responder",
        "--bootstrap", str(N_BOOT), "--out", str(out),
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == to_csv(table).encode("utf-8")  # byte for byte the page's CSV
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [float(r["wtp"]) for r in rows] == [0.0, 2500.0, 5000.0, 10000.0, 20000.0]

    filtered = invoke(
        cohort_app, "table", "--pilot", "bph", "--name", "enrolment", "--arm", "operating_room"
    )
    counts = {r["arm"]: r["enrolled"] for r in csv.DictReader(io.StringIO(filtered.output))}
    assert counts["outpatient_clinic"] == "0"
    unknown = invoke(cohort_app, "table", "--pilot", "bph", "--name", "nope")
    assert unknown.exit_code == 2 and "Tables:" in unknown.output
    wrong_arm = invoke(cohort_app, "table", "--pilot", "bph", "--name", "enrolment", "--arm", "x")
    assert wrong_arm.exit_code == 2 and "No arm 'x'" in wrong_arm.output
    not_cea = invoke(cohort_app, "table", "--pilot", "older-adults", "--name", "ceac")
    assert not_cea.exit_code == 2 and "has no table 'ceac'" in not_cea.output


def test_mixed_model_prints_its_effects(cohort_app: Flask) -> None:  # noqa: F811
    result = invoke(cohort_app, "mixed-model", "--pilot", "older-adults")  # its primary score
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split(",")
    assert header[:3] == ["category", "n_exposed", "slope_difference"]
    bad = invoke(cohort_app, "mixed-model", "--pilot", "older-adults", "--score", "ipss.total")
    assert bad.exit_code == 2


def test_the_group_is_registered_with_the_patient_summary(cohort_app: Flask) -> None:  # noqa: F811
    group: Any = main.commands["report"]
    assert group is report
    assert set(report.commands) >= {"management", "board-pack", "table", "mixed-model", "patient"}
    help_text = cohort_app.test_cli_runner().invoke(report, ["management", "--help"]).output
    assert "--period PERIOD" in help_text and "--lang [fi|sv|en]" in help_text
    assert "2025Q3" in help_text


def test_estimates_follow_the_json_contract(cohort_app: Flask) -> None:  # noqa: F811
    import json

    result = invoke(
        cohort_app, "estimates", "--pilot", "bph", "--bootstrap", str(N_BOOT),
        "--imputations", "5", "--seed", "3", "--as-of", "2030-01-01",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["pilot"] == "bph" and data["as_of"] == "2030-01-01"
    assert data["comparison"] == {"reference": "operating_room", "other": "outpatient_clinic"}
    assert data["primary"] == {"name": "delta_effect", "outcome": "ipss.total", "time_point": "m12"}
    estimates = data["estimates"]
    for name in ("delta_effect", "delta_cost", "delta_qaly"):
        for kind in ("adjusted", "unadjusted"):
            est = estimates[name][kind]
            assert set(est) >= {"estimate", "ci95", "n", "method"}
            low, high = est["ci95"]
            assert low <= est["estimate"] <= high
    assert estimates["delta_effect"]["adjusted"]["method"] == "g_computation_mi"
    assert estimates["delta_effect"]["unadjusted"]["method"] == "difference_of_means"
    assert estimates["delta_effect"]["adjusted"]["n"] > estimates["delta_effect"]["unadjusted"]["n"]
    assert set(estimates["inmb"]) == {"0", "250", "500", "1000", "2000"}
    effect = estimates["delta_effect"]["adjusted"]["estimate"]
    cost = estimates["delta_cost"]["adjusted"]["estimate"]
    assert estimates["inmb"]["500"]["adjusted"]["estimate"] == pytest.approx(500 * effect - cost)
    for entry in estimates["prob_cost_effective"].values():
        assert 0 < entry["adjusted"] < 1 and 0 < entry["unadjusted"] < 1
    assert set(data["missing"]["ipss.total@m12"]) == {"operating_room", "outpatient_clinic"}
    assert data["services"] == []
    assert [s["name"] for s in data["sensitivity"]][:1] == ["complete_cases"]
    assert any("not randomised" in caveat for caveat in data["caveats"])
    # the same numbers as the analysis the pages show
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    from datetime import date

    analysis = CohortAnalysis(
        db.session, pilot, n_boot=N_BOOT, seed=3, as_of=date(2030, 1, 1), imputations=5
    )
    assert analysis.primary is not None
    assert analysis.primary.differences["improvement"].adjusted.estimate == pytest.approx(effect)
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "export_estimates"
    text = invoke(
        cohort_app, "estimates", "--pilot", "bph", "--bootstrap", str(N_BOOT),
        "--imputations", "5", "--seed", "3", "--as-of", "2030-01-01", "--format", "text",
        "--lang", "fi",
    )  # fmt: skip
    assert text.exit_code == 0, text.output
    assert "delta_effect" in text.output and "satunnaistettu" in text.output.lower()


def test_estimates_of_a_pilot_without_two_arm_comparison(cohort_app: Flask) -> None:  # noqa: F811
    import json

    result = invoke(cohort_app, "estimates", "--pilot", "older-adults", "--bootstrap", "100")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["comparison"] is None and data["estimates"] == {}
    assert data["primary"]["outcome"] == "ucla3.total"
    assert invoke(cohort_app, "estimates", "--pilot", "nope").exit_code == 2
    # the services' adjusted differences (issue 13), every service type and outcome at m12
    services = data["services"]
    assert len(services) == 6 * 4 and {s["time_point"] for s in services} == {"m12"}
    primary = [s for s in services if s["primary"]]
    assert {s["outcome"] for s in primary} == {"ucla3.total"} and len(primary) == 6
    assert any(s["estimate"] is not None for s in primary)
    assert {s["analysis"] for s in data["service_sensitivity"]} >= {"outcome_regression", "ipw"}
    assert "ucla3.total@m12" in data["missing"]
    assert any("Services were not randomised" in caveat for caveat in data["caveats"])
    text = invoke(cohort_app, "estimates", "--pilot", "older-adults", "--format", "text")
    assert text.exit_code == 0 and "friend_service / ucla3.total *" in text.output
