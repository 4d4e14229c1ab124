"""The test suite's third pilot (``tests/fixtures/knee_pilot``): knee arthroplasty, inpatient
against day surgery, with its own higher-is-better instrument ``knee12`` and its own procedure
settings. Not shipped: tests point the definition folders at copies that add it."""

from __future__ import annotations

import shutil
from pathlib import Path

from vaikuttavuus.paths import PROJECT_ROOT

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "knee_pilot"
PILOT = "knee"
INSTRUMENT = "knee12"
ITEMS = (
    "kf_pain", "kf_washing", "kf_car", "kf_walking", "kf_standing_up", "kf_limping",
    "kf_kneeling", "kf_night_pain", "kf_work", "kf_giving_way", "kf_shopping", "kf_stairs",
)  # fmt: skip


def definition_folders(root: Path) -> dict[str, Path]:
    """Copies of the shipped ``questionnaires/`` and ``cohorts/`` with the knee pilot added,
    under ``root``; returns the environment variables that point the app at them."""
    folders = {}
    for name in ("questionnaires", "cohorts"):
        target = root / name
        if not target.exists():
            shutil.copytree(PROJECT_ROOT / name, target)
            for path in (FIXTURE / name).iterdir():
                shutil.copy(path, target / path.name)
        folders[f"VAIKUTTAVUUS_{name.upper()}"] = target
    return folders


def answers(level: int) -> dict[str, int]:
    """knee12 answers with every item at ``level`` (0–4): the total is 12 × level."""
    return dict.fromkeys(ITEMS, level)
