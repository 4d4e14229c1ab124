"""Where the declarative definition folders live.

By default they are the top-level ``questionnaires/``, ``cohorts/``, ``costing/`` and
``reports/`` folders of the checkout; a county can point at its own copies with the
environment variables ``VAIKUTTAVUUS_QUESTIONNAIRES``, ``VAIKUTTAVUUS_COHORTS``,
``VAIKUTTAVUUS_COSTING`` and ``VAIKUTTAVUUS_REPORTS`` (the app config keys of the same names
without the prefix override these for one app).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _folder(name: str) -> Path:
    override = os.environ.get(f"VAIKUTTAVUUS_{name.upper()}")
    return Path(override) if override else PROJECT_ROOT / name


def questionnaires_dir() -> Path:
    return _folder("questionnaires")


def cohorts_dir() -> Path:
    return _folder("cohorts")


def costing_dir() -> Path:
    return _folder("costing")


def reports_dir() -> Path:
    return _folder("reports")
