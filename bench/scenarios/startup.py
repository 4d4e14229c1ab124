"""Start-up: ``vaikuttavuus --help`` in a fresh process, as an operator types it.

``cli_help``: the wall-clock seconds of ``vaikuttavuus --help`` (the installed console script,
a new interpreter each time), median of repeats, and the heavy libraries the help imported
(none: pandas, SQLAlchemy and the statistics, plotting and PDF libraries load only in the
commands that use them). The same figure bounds how fast every command and a worker start.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.results import Figures
from bench.scenarios import Context, Scenario, register

HEAVY = ("pandas", "numpy", "sqlalchemy", "scipy", "statsmodels", "matplotlib", "weasyprint")

_PROBE = (
    "import json, sys\n"
    "from vaikuttavuus.cli import main\n"
    "try:\n"
    "    main.main(args=['--help'], prog_name='vaikuttavuus', standalone_mode=False)\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(json.dumps(sorted(n for n in json.loads(sys.argv[1]) if n in sys.modules)))\n"
)


def help_seconds(executable: Path, env: dict[str, str], repeats: int) -> list[float]:
    """Wall-clock seconds of ``executable --help``, once per repeat (after one warm-up run,
    so the file cache is warm as on a server)."""
    timings = []
    for number in range(repeats + 1):
        started = time.perf_counter()
        subprocess.run(
            [str(executable), "--help"], env=env, check=True, capture_output=True, timeout=120
        )
        if number:
            timings.append(time.perf_counter() - started)
    return timings


def run_startup(
    context: Context, _backend: str | None, _wanted: frozenset[str]
) -> dict[str, Figures]:
    env = context.workspace.env()
    executable = Path(sys.executable).with_name("vaikuttavuus")
    repeats = 3 if context.quick else 7
    context.say(f"cli_help: vaikuttavuus --help × {repeats}")
    timings = help_seconds(executable, env, repeats)
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = json.loads(probe.stdout.strip().splitlines()[-1])
    return {
        "cli_help": {
            "seconds": round(statistics.median(timings), 3),
            "seconds_all_repeats": [round(t, 3) for t in timings],
            "heavy_modules_loaded": loaded,
        }
    }


register(
    Scenario(
        names=("cli_help",),
        run=run_startup,
        per_backend=False,
        description="`vaikuttavuus --help` in a fresh process (start-up imports)",
    )
)
