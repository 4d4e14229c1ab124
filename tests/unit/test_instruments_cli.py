"""The ``vaikuttavuus instruments …`` and ``vaikuttavuus score`` commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from vaikuttavuus.cli import main
from vaikuttavuus.cli.instruments import instruments, score, version_key
from vaikuttavuus.definitions import load_instrument
from vaikuttavuus.fhir import validate_questionnaire
from vaikuttavuus.paths import questionnaires_dir

IPSS_FILE = questionnaires_dir() / "ipss-1.yaml"
IPSS_HEADER = "respondent,ipss1,ipss2,ipss3,ipss4,ipss5,ipss6,ipss7,ipss_qol,clinic"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, command: Any, args: list[str]) -> Result:
    return runner.invoke(command, args, catch_exceptions=False)


def assert_one_line_error(result: Result, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# instruments list / show
# --------------------------------------------------------------------------------------------


def test_list_text(runner: CliRunner) -> None:
    result = run(runner, instruments, ["list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["id", "version", "kind", "items", "placeholder"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {
        "djg6", "eq5d5l", "insecurity", "ipss", "lonely1", "prem_bph", "prem_services", "ucla3"
    }  # fmt: skip
    assert rows["ipss"][:5] == ["ipss", "1", "prom", "8", "no"]
    assert rows["eq5d5l"][4] == "yes"
    assert "Eturauhasoireet" in result.stdout


def test_list_json(runner: CliRunner) -> None:
    result = run(runner, instruments, ["list", "--format", "json"])
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["prem_bph"] == {
        "id": "prem_bph",
        "version": "1",
        "kind": "prem",
        "title": "Kokemuksesi eturauhastoimenpiteestä",
        "items": 9,
        "placeholder_texts": False,
    }


def test_show_json_lists_items_in_order(runner: CliRunner) -> None:
    result = run(runner, instruments, ["show", "ipss", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    expected = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"]
    assert [item["id"] for item in data["items"]] == expected
    assert [item["id"] for s in data["sections"] for item in s["items"]] == expected
    assert data["items"][0]["section"] == "emptying"
    assert [s["id"] for s in data["scores"]] == ["total", "voiding", "storage", "qol", "band"]
    assert data["id"] == "ipss" and data["version"] == "1"


def test_show_text_in_swedish(runner: CliRunner) -> None:
    result = run(runner, instruments, ["show", "djg6", "--language", "sv"])
    assert result.exit_code == 0
    assert "djg6 version 1 (prom)" in result.stdout
    assert "Jag saknar att ha människor omkring mig." in result.stdout
    assert "1 = Ja; 2 = Mer eller mindre; 3 = Nej" in result.stdout
    assert "total: Total ensamhet (sum; 0–6; lower is better; MIC 1)" in result.stdout


def test_show_unknown_instrument_or_version(runner: CliRunner) -> None:
    assert_one_line_error(
        run(runner, instruments, ["show", "phq9"]), 2, "unknown instrument 'phq9'"
    )
    assert_one_line_error(
        run(runner, instruments, ["show", "ipss", "--version", "7"]), 2, "no version '7'", "1"
    )


# --------------------------------------------------------------------------------------------
# instruments validate
# --------------------------------------------------------------------------------------------


def test_validate_shipped_folder(runner: CliRunner) -> None:
    result = run(runner, instruments, ["validate", str(questionnaires_dir())])
    assert result.exit_code == 0
    assert result.stdout.strip() == "OK: 10 instrument definition(s) valid"  # 8 + 2 new versions
    assert result.stderr == ""


def test_validate_reports_file_item_and_field(runner: CliRunner, tmp_path: Path) -> None:
    text = IPSS_FILE.read_text(encoding="utf-8")
    ipss4 = "      - id: ipss4\n        type: single_choice\n        answer_set: frequency\n"
    assert ipss4 in text
    unknown = write(
        tmp_path / "ipss-1.yaml",
        text.replace(ipss4, ipss4 + "        colour: red\n"),
    )
    result = run(runner, instruments, ["validate", str(unknown)])
    assert result.exit_code == 1
    assert result.stdout.strip() == (
        f"{unknown} (sections[urgency_and_stream] → items[ipss4] → colour): unknown field"
    )
    assert "1 problem(s) in 1 of 1 file(s)" in result.stderr
    no_options = write(
        tmp_path / "ipss-1.yaml",
        text.replace(ipss4, "      - id: ipss4\n        type: single_choice\n"),
    )
    result = run(runner, instruments, ["validate", str(no_options)])
    assert result.exit_code == 1
    assert result.stdout.strip() == (
        f"{no_options} (sections[urgency_and_stream] → items[ipss4]): a choice item needs "
        "exactly one of 'options' or 'answer_set'"
    )


def test_validate_reports_band_gaps_and_duplicate_keys(runner: CliRunner, tmp_path: Path) -> None:
    """A band limit typed wrong leaves values without a band, and a key written twice in the
    YAML silently replaces the first: both are refused with the place."""
    text = IPSS_FILE.read_text(encoding="utf-8")
    moderate = "      - label: moderate\n        min: 8\n"
    assert moderate in text
    gap = write(tmp_path / "ipss-1.yaml", text.replace(moderate, moderate.replace("8", "9")))
    result = run(runner, instruments, ["validate", str(gap)])
    assert result.exit_code == 1
    assert f"{gap} (scores[band]): bands 'mild' (… 7) and 'moderate' (9 …) leave a gap" in (
        result.stdout
    )
    repeated = text.replace('version: "1"\n', 'version: "1"\nversion: "2"\n')
    twice = write(tmp_path / "ipss-1.yaml", repeated)
    result = run(runner, instruments, ["validate", str(twice)])
    assert result.exit_code == 1
    line = text[: text.index('version: "1"\n')].count("\n") + 2
    assert (
        f"{twice} (line {line}, column 1): not valid YAML: the key 'version' appears twice "
        f"(first on line {line - 1})"
    ) in result.stdout


def test_validate_reports_yaml_syntax_with_position(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "bad-1.yaml", "id: bad\nversion: '1'\ntitle: [unclosed\n")
    result = run(runner, instruments, ["validate", str(path)])
    assert result.exit_code == 1
    assert str(path) in result.stdout
    assert "not valid YAML" in result.stdout
    assert "line" in result.stdout


def test_validate_folder_with_good_broken_and_duplicate_files(
    runner: CliRunner, tmp_path: Path
) -> None:
    shutil.copy(IPSS_FILE, tmp_path / "ipss-1.yaml")
    shutil.copy(IPSS_FILE, tmp_path / "copy.yaml")  # same id and version, unconventional name
    text = IPSS_FILE.read_text(encoding="utf-8")
    broken = text.replace('version: "1"', 'version: "2"')
    broken = broken.replace("minimal_important_change: 3", "minimal_important_change: -3")
    write(tmp_path / "ipss-2.yaml", broken)
    result = run(runner, instruments, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    out = result.stdout
    broken_line = next(line for line in out.splitlines() if "ipss-2.yaml" in line)
    assert "(scores[total] → " in broken_line
    assert "minimal_important_change): " in broken_line
    assert "greater than 0" in broken_line
    assert "the same id and version is also in" in out
    assert "warning:" in result.stderr and "copy.yaml" in result.stderr


def test_validate_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    assert_one_line_error(
        run(runner, instruments, ["validate", str(tmp_path / "nope")]), 1, "does not exist"
    )
    assert_one_line_error(run(runner, instruments, ["validate", str(tmp_path)]), 1, "no .yaml")


# --------------------------------------------------------------------------------------------
# FHIR export / import
# --------------------------------------------------------------------------------------------


def test_export_fhir(runner: CliRunner) -> None:
    result = run(runner, instruments, ["export-fhir", "ucla3", "--language", "en"])
    assert result.exit_code == 0
    resource = json.loads(result.stdout)
    validate_questionnaire(resource)
    assert resource["language"] == "en"
    assert [item["linkId"] for item in resource["item"][0]["item"]] == ["ucla1", "ucla2", "ucla3"]


def test_import_fhir_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    exported = run(runner, instruments, ["export-fhir", "prem_bph"]).stdout
    source = write(tmp_path / "prem.json", exported)
    out = tmp_path / "prem_bph-1.yaml"
    result = run(runner, instruments, ["import-fhir", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "note: scoring rules are not part" in result.stderr
    imported = load_instrument(out)
    original = load_instrument(questionnaires_dir() / "prem_bph-1.yaml")
    assert imported.item_ids == original.item_ids
    assert [i.type for i in imported.items] == [i.type for i in original.items]
    assert imported.item("improve").enable_when == original.item("improve").enable_when
    again = run(runner, instruments, ["import-fhir", str(source), "--out", str(out)])
    assert_one_line_error(again, 1, "exists")
    printed = run(runner, instruments, ["import-fhir", str(source)])
    assert yaml.safe_load(printed.stdout)["id"] == "prem_bph"


def test_import_fhir_bad_input(runner: CliRunner, tmp_path: Path) -> None:
    not_json = write(tmp_path / "x.json", "{nope")
    assert_one_line_error(run(runner, instruments, ["import-fhir", str(not_json)]), 1, "not JSON")
    patient = write(tmp_path / "p.json", json.dumps({"resourceType": "Patient"}))
    assert_one_line_error(
        run(runner, instruments, ["import-fhir", str(patient)]), 1, "expected a Questionnaire"
    )
    missing = tmp_path / "missing.json"
    assert_one_line_error(run(runner, instruments, ["import-fhir", str(missing)]), 1, "cannot read")


# --------------------------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------------------------


@pytest.fixture
def ipss_csv(tmp_path: Path) -> Path:
    return write(
        tmp_path / "ipss.csv",
        "\n".join(
            [
                IPSS_HEADER,
                "007,1,2,3,4,5,0,1,3,north",
                "008,1,,3,4,5,0,1,,",
                "009,0,0,0,0,0,0,0,0,south",
            ]
        )
        + "\n",
    )


def test_score_json(runner: CliRunner, ipss_csv: Path) -> None:
    result = run(runner, score, ["ipss", "--input", str(ipss_csv), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and len(rows) == 3
    assert list(rows[0]) == ["respondent", "clinic", "total", "voiding", "storage", "qol", "band"]
    assert rows[0] == {
        "respondent": "007",
        "clinic": "north",
        "total": 16,
        "voiding": 9,
        "storage": 7,
        "qol": 3,
        "band": "moderate",
    }
    assert rows[1] == {
        "respondent": "008",
        "clinic": None,
        "total": None,
        "voiding": 9,
        "storage": None,
        "qol": None,
        "band": None,
    }
    assert rows[2]["band"] == "mild"


def test_score_csv(runner: CliRunner, ipss_csv: Path) -> None:
    result = run(runner, score, ["ipss", "--input", str(ipss_csv), "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "respondent,clinic,total,voiding,storage,qol,band",
        "007,north,16,9,7,3,moderate",
        "008,,,9,,,",
        "009,south,0,0,0,0,mild",
    ]


def test_score_flags_and_value_sets(runner: CliRunner, tmp_path: Path) -> None:
    ucla = write(tmp_path / "u.csv", "id;ucla1;ucla2;ucla3\na;3;3;1\nb;1;1;1\nc;;2;2\n")
    rows = json.loads(run(runner, score, ["ucla3", "--input", str(ucla)]).stdout)
    assert [(r["id"], r["total"], r["lonely"]) for r in rows] == [
        ("a", 7, True),
        ("b", 3, False),
        ("c", None, None),
    ]
    eq = write(tmp_path / "e.csv", "mo,sc,ua,pd,ad,vas\n1,1,1,1,1,90\n2,1,1,1,1,\n5,5,5,5,5,10\n")
    england = json.loads(run(runner, score, ["eq5d5l", "--input", str(eq)]).stdout)
    assert [r["index"] for r in england] == [1, 0.942, -0.285]
    assert [r["vas"] for r in england] == [90, None, 10]
    dutch = run(runner, score, ["eq5d5l", "--input", str(eq), "--value-set", "netherlands_2016"])
    assert [r["index"] for r in json.loads(dutch.stdout)] == [1, 0.918, -0.446]


def test_score_out_of_range_code(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", f"{IPSS_HEADER}\n1,1,1,1,1,1,1,1,1,x\n2,1,1,7,1,1,1,1,1,y\n")
    result = run(runner, score, ["ipss", "--input", str(path)])
    assert_one_line_error(result, 1, "line 3", "item 'ipss3'", "7 is not a valid answer")
    assert result.stdout == ""
    text = write(tmp_path / "b.csv", "ucla1,ucla2,ucla3\nsometimes,1,1\n")
    assert_one_line_error(
        run(runner, score, ["ucla3", "--input", str(text)]), 1, "line 2", "'sometimes'"
    )


def test_score_bad_requests(runner: CliRunner, ipss_csv: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        run(runner, score, ["ipss", "--input", str(tmp_path / "none.csv")]), 1, "cannot read"
    )
    assert_one_line_error(
        run(runner, score, ["phq9", "--input", str(ipss_csv)]), 2, "unknown instrument 'phq9'"
    )
    assert_one_line_error(
        run(runner, score, ["ipss", "--input", str(ipss_csv), "--value-set", "england_2018"]),
        2,
        "no value-set score",
    )
    eq = write(tmp_path / "e.csv", "mo,sc,ua,pd,ad\n1,1,1,1,1\n")
    assert_one_line_error(
        run(runner, score, ["eq5d5l", "--input", str(eq), "--value-set", "finland"]),
        2,
        "unknown value set 'finland'",
    )
    empty = write(tmp_path / "empty.csv", "")
    assert_one_line_error(run(runner, score, ["ipss", "--input", str(empty)]), 1, "is empty")
    unrelated = write(tmp_path / "u.csv", "a,b\n1,2\n")
    assert_one_line_error(run(runner, score, ["ipss", "--input", str(unrelated)]), 1, "no column")
    clash = write(tmp_path / "c.csv", "ucla1,ucla2,ucla3,total\n1,1,1,3\n")
    assert_one_line_error(run(runner, score, ["ucla3", "--input", str(clash)]), 1, "total")
    twice = write(tmp_path / "t.csv", "ucla1,ucla1,ucla3\n1,1,1\n")
    assert_one_line_error(run(runner, score, ["ucla3", "--input", str(twice)]), 1, "duplicate")


def test_version_ordering() -> None:
    assert sorted(["10", "2", "1.5", "1"], key=version_key) == ["1", "1.5", "2", "10"]


def test_latest_version_is_used_unless_asked(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "questionnaires"
    folder.mkdir()
    text = IPSS_FILE.read_text(encoding="utf-8")
    write(folder / "ipss-2.yaml", text.replace('version: "1"', 'version: "2"'))
    write(
        folder / "ipss-10.yaml",
        text.replace('version: "1"', 'version: "10"').replace("  - id: qol\n", "  - id: quality\n"),
    )
    monkeypatch.setenv("VAIKUTTAVUUS_QUESTIONNAIRES", str(folder))
    answers = write(tmp_path / "a.csv", "ipss1,ipss_qol\n1,2\n")
    latest = json.loads(run(runner, score, ["ipss", "--input", str(answers)]).stdout)
    assert latest == [{"total": None, "voiding": None, "storage": None, "quality": 2, "band": None}]
    older = run(runner, score, ["ipss", "--input", str(answers), "--version", "2"])
    assert "qol" in json.loads(older.stdout)[0]
    listed = run(runner, instruments, ["list", "--format", "json"])
    assert [row["version"] for row in json.loads(listed.stdout)] == ["2", "10"]


def test_broken_definition_folder_is_reported(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "x-1.yaml", "id: x\n")
    monkeypatch.setenv("VAIKUTTAVUUS_QUESTIONNAIRES", str(tmp_path))
    result = run(runner, instruments, ["list"])
    assert result.exit_code == 1
    assert "instruments validate" in result.stderr
    assert "x-1.yaml (version): required field is missing" in result.stderr


# --------------------------------------------------------------------------------------------
# Through the project's command group
# --------------------------------------------------------------------------------------------


def test_commands_are_registered_on_main(runner: CliRunner, ipss_csv: Path) -> None:
    result = run(runner, main, ["score", "ipss", "--input", str(ipss_csv), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "007,north,16,9,7,3,moderate"
    listed = run(runner, main, ["instruments", "list", "--format", "json"])
    assert len(json.loads(listed.stdout)) == 10  # every version of the 8 instruments
    shown = run(runner, main, ["instruments", "show", "eq5d5l", "--format", "json"])
    assert [item["id"] for item in json.loads(shown.stdout)["items"]] == [
        "mo", "sc", "ua", "pd", "ad", "vas"
    ]  # fmt: skip
    bad = run(runner, main, ["score", "nope", "--input", str(ipss_csv)])
    assert_one_line_error(bad, 2, "unknown instrument")
