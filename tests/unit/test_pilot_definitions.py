"""Pilot definitions: every pilot-specific fact comes from the YAML, and `init`'s checks name
the file and the place of a mistake."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from flask_babel import force_locale

from tests.support.knee_pilot import FIXTURE
from vaikuttavuus import create_app
from vaikuttavuus.definitions import DefinitionError, load_pilot
from vaikuttavuus.domain import imports as im
from vaikuttavuus.paths import PROJECT_ROOT
from vaikuttavuus.services.definitions import load_all_definitions, load_measure_catalogue
from vaikuttavuus.services.imports import describe


@pytest.fixture
def cohorts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the shipped pilot definitions, used by the loader."""
    folder = tmp_path / "cohorts"
    shutil.copytree(PROJECT_ROOT / "cohorts", folder)
    monkeypatch.setenv("VAIKUTTAVUUS_COHORTS", str(folder))
    return folder


@pytest.fixture
def app_context() -> Iterator[None]:
    """A request context (messages), without a database."""
    app = create_app({"TESTING": True, "IGNORE_INSTANCE_CONFIG": True, "SECRET_KEY": "x",
                      "PSEUDONYM_KEY": "y", "DATABASE_URL": "sqlite://"})  # fmt: skip
    with app.test_request_context():
        yield


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def problems(*fragments: str) -> str:
    with pytest.raises(DefinitionError) as caught:
        load_all_definitions()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_shipped_pilots_declare_utility_and_guidance_flag() -> None:
    _instruments, pilots, _measures = load_all_definitions()
    older = next(p for p in pilots if p.id == "older-adults")
    assert older.analysis.guidance_flag == "insecurity.safe_daily"
    bph = next(p for p in pilots if p.id == "bph")
    assert bph.analysis.guidance_flag is None


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("  guidance_flag: ipss.total\n", "'ipss' is not scheduled at the baseline"),
        ("  guidance_flag: djg6.total\n", "'djg6' has no flag of 'total'"),
        ("  utility: ucla3.lonely\n", "'ucla3.lonely' is not a numeric score of 'ucla3'"),
        ("  utility: eq5d5l.index\n", "'eq5d5l' must be scheduled at the baseline and at a"),
    ],
)
def test_utility_and_guidance_flag_must_exist(cohorts: Path, line: str, fragment: str) -> None:
    path = cohorts / "older-adults.yaml"
    edit(path, "  guidance_flag: insecurity.safe_daily\n", line)
    message = problems("older-adults.yaml", fragment)
    assert "analysis → " in message


# -- procedure settings -------------------------------------------------------------------------


KNEE = load_pilot(FIXTURE / "cohorts" / "knee.yaml")


def test_settings_come_from_the_definition() -> None:
    assert [s.id for s in KNEE.settings] == ["inpatient_theatre", "day_surgery_unit"]
    assert KNEE.settings_of("inpatient") == ("inpatient_theatre",)
    assert KNEE.setting_name("day_surgery_unit", "sv") == "Dagkirurgisk enhet"
    bph = load_pilot(PROJECT_ROOT / "cohorts" / "bph.yaml")
    # Without procedure_settings the arms are the settings, each arm allowing all of them.
    assert bph.settings_of("outpatient_clinic") == ("operating_room", "outpatient_clinic")
    assert bph.setting_name("outpatient_clinic", "fi") == "Poliklinikka"


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("[inpatient_theatre]", "[ward]", "arms[inpatient] → settings: unknown setting(s) ward"),
        ("  - id: day_surgery_unit\n", "  - id: inpatient_theatre\n", "ids must be unique"),
    ],
)
def test_settings_are_checked(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    path = tmp_path / "knee.yaml"
    shutil.copy(FIXTURE / "cohorts" / "knee.yaml", path)
    edit(path, old, new)
    with pytest.raises(DefinitionError) as caught:
        load_pilot(path)
    assert "knee.yaml" in str(caught.value) and fragment in str(caught.value)


def test_procedure_import_checks_the_setting_per_arm(app_context: None) -> None:
    people = {
        "P-ABC123": im.PersonMatch(1, 11, "inpatient", date(2025, 3, 14)),
        "P-DEF456": im.PersonMatch(2, 12, "day_surgery", date(2025, 3, 14)),
    }
    context = im.ImportContext(
        pilot=KNEE,
        measures=load_measure_catalogue(),
        today=date(2025, 12, 1),
        hash_identity_code=lambda code: code,
        find_people=lambda _h, pseudonyms: im.PeopleFound(
            {}, {p: people[p] for p in pseudonyms if p in people}
        ),
    )
    header = ["pseudonym", "procedure_type", "setting", "performed_on"]
    rows = [
        ["P-ABC123", "tka", "inpatient_theatre", "2025-03-14"],
        ["P-DEF456", "uka", "Day_Surgery_Unit", "2025-03-14"],
        ["P-DEF456", "uka", "inpatient_theatre", "2025-03-15"],  # converted: allowed
        ["P-ABC123", "tka", "day_surgery_unit", "2025-03-16"],
        ["P-ABC123", "tka", "operating_room", "2025-03-17"],
    ]
    result = im.validate("procedures", im.table_from_rows(header, rows), context)
    assert [(e.line, e.column, e.code) for e in result.errors] == [
        (5, "setting", "conflict"),
        (6, "setting", "unknown_code"),
    ]
    assert result.errors[0].params["allowed"] == ["inpatient_theatre"]
    with force_locale("sv"):
        assert describe(result.errors[0]) == (
            "I personens grupp inpatient görs inga åtgärder i den här vårdmiljön; gruppens "
            "vårdmiljöer är inpatient_theatre."
        )
    assert sorted(result.errors[1].params["allowed"]) == ["day_surgery_unit", "inpatient_theatre"]


@pytest.mark.parametrize("name", ["bmi", "baseline_oks_totl", "baseline_ucla3_lonely"])
def test_unknown_covariates_are_refused_naming_file_and_place(cohorts: Path, name: str) -> None:
    edit(cohorts / "older-adults.yaml", "  - baseline_insecurity_safe_daily\n",
         f"  - baseline_insecurity_safe_daily\n  - {name}\n")  # fmt: skip
    problems("older-adults.yaml", "covariates[8]", name)


def test_the_willingness_to_pay_unit_comes_from_the_definition(app_context: None) -> None:
    from types import SimpleNamespace

    from vaikuttavuus.services.cohort_view import Labels

    knee = Labels(SimpleNamespace(spec=KNEE), "sv")  # type: ignore[arg-type]
    assert KNEE.willingness_to_pay("improvement").reference == 100
    with force_locale("sv"):
        assert knee.effect_unit("improvement") == "poäng knäfunktion"
        assert knee.per_unit("improvement") == "per poäng knäfunktion"
        assert knee.per_unit("qaly") == "per QALY"  # not declared: the default
    with force_locale("fi"):
        fi = Labels(SimpleNamespace(spec=KNEE), "fi")  # type: ignore[arg-type]
        assert fi.per_unit("improvement") == "/ polven toimintakyvyn piste"
