"""Before ``vaikuttavuus init`` (no ``SECRET_KEY`` or ``PSEUDONYM_KEY``): ``--help`` and
``init`` work, and a command that needs the app says what to do, without a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_cli


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """An instance folder without config.py and no keys in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAIKUTTAVUUS_")}
    for key in ("DATABASE_URL", "SECRET_KEY", "PSEUDONYM_KEY", "FLASK_APP"):
        env.pop(key, None)
    env["VAIKUTTAVUUS_INSTANCE"] = str(tmp_path / "instance")
    return env


def test_help_works_before_init(bare_env: dict[str, str]) -> None:
    result = run_cli("--help", env=bare_env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr
    for command in ("init", "demo-data", "users", "report", "serve"):
        assert command in result.stdout
    sub = run_cli("users", "--help", env=bare_env)
    assert sub.returncode == 0 and "Traceback" not in sub.stderr
    assert "create" in sub.stdout


@pytest.mark.parametrize("command", [("users", "list"), ("serve",), ("routes",)])
def test_commands_needing_the_app_explain_without_a_traceback(
    bare_env: dict[str, str], command: tuple[str, ...]
) -> None:
    result = run_cli(*command, env=bare_env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "SECRET_KEY, PSEUDONYM_KEY not set" in result.stderr
    assert "vaikuttavuus init" in result.stderr


def test_init_works_without_keys_and_then_everything_does(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    first = run_cli("init", env=bare_env)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert (tmp_path / "instance" / "config.py").exists()
    listing = run_cli("users", "list", env=bare_env)
    assert listing.returncode == 0, listing.stderr
    helped = run_cli("--help", env=bare_env)
    assert helped.returncode == 0 and "routes" in helped.stdout
