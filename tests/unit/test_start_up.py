"""Start-up stays light: ``vaikuttavuus --help`` loads no data, statistics, plotting or PDF
library, so every command (and a worker or server boot) starts in a fraction of a second.

Each check runs in a fresh interpreter (a subprocess) and looks at ``sys.modules`` after the
work, so a module imported by another test cannot hide a regression. How long the help takes
is measured by ``scripts/bench`` (``cli_help.seconds``), not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY_FOR_HELP = (
    "pandas",
    "numpy",
    "sqlalchemy",
    "scipy",
    "statsmodels",
    "matplotlib",
    "weasyprint",
    "fhir",
    "openpyxl",
    "alembic",
)

PROBE = """
import json, sys
from vaikuttavuus.cli import main
try:
    main.main(args=sys.argv[2:], prog_name="vaikuttavuus", standalone_mode=False)
except SystemExit:
    pass
names = json.loads(sys.argv[1])
print(json.dumps(sorted(n for n in names if n in sys.modules)))
"""


def loaded_after(arguments: list[str], names: tuple[str, ...]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(names), *arguments],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "k", "PSEUDONYM_KEY": "p"},
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_imports_no_heavy_library() -> None:
    assert loaded_after(["--help"], HEAVY_FOR_HELP) == []


def test_help_of_a_command_group_imports_no_heavy_library() -> None:
    assert loaded_after(["report", "--help"], HEAVY_FOR_HELP) == []
    assert loaded_after(["import", "--help"], HEAVY_FOR_HELP) == []


def test_the_probe_sees_what_a_command_imports(tmp_path: Path) -> None:
    """The check can fail: a command that computes does load pandas (when it runs)."""
    summary = tmp_path / "strategies.csv"
    summary.write_text("strategy,cost,effect\na,100,1\nb,300,2\n", encoding="utf-8")
    assert loaded_after(["cea", "--summary", str(summary)], ("pandas",)) == ["pandas"]
