"""Pilot definitions: every pilot-specific fact comes from the YAML, and `init`'s checks name
the file and the place of a mistake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vaikuttavuus.definitions import DefinitionError
from vaikuttavuus.paths import PROJECT_ROOT
from vaikuttavuus.services.definitions import load_all_definitions


@pytest.fixture
def cohorts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the shipped pilot definitions, used by the loader."""
    folder = tmp_path / "cohorts"
    shutil.copytree(PROJECT_ROOT / "cohorts", folder)
    monkeypatch.setenv("VAIKUTTAVUUS_COHORTS", str(folder))
    return folder


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
