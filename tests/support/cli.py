"""Running the ``vaikuttavuus`` command line in a child process, as an operator would."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m vaikuttavuus.cli ARGS`` with ``env``; the result, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "vaikuttavuus.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
