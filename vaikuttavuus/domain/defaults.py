"""Constants that command-line options show as defaults, kept free of heavy imports so that
``vaikuttavuus --help`` starts without numpy, pandas or the statistics libraries."""

from __future__ import annotations

from typing import Literal

DEFAULT_BOOTSTRAP = 5_000
"""Bootstrap replicates of the cost-effectiveness analyses."""
DEFAULT_SEED = 20_260_101
"""Bootstrap seed of the reports: the same data give the same figures."""
IMPORT_KINDS: tuple[str, ...] = (
    "people",
    "procedures",
    "measurements",
    "resource_use",
    "direct_costs",
    "exposures",
    "responses",
)
"""What ``vaikuttavuus import`` and the import pages take (:mod:`vaikuttavuus.domain.imports`)."""
LANGUAGES: tuple[Literal["fi", "sv", "en"], ...] = ("fi", "sv", "en")
"""The languages of the definitions, pages and documents."""
