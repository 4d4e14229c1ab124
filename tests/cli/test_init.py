"""`vaikuttavuus init`: creates the instance config and schema, loads definitions, idempotent."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from vaikuttavuus.paths import PROJECT_ROOT


@pytest.fixture
def instance_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VAIKUTTAVUUS_")}
    env.pop("DATABASE_URL", None)
    env["VAIKUTTAVUUS_INSTANCE"] = str(tmp_path / "instance")
    return env


def test_init_creates_keys_schema_and_loads_definitions_idempotently(
    instance_env: dict[str, str], tmp_path: Path
) -> None:
    first = run_cli("init", env=instance_env)
    assert first.returncode == 0, first.stderr
    config = tmp_path / "instance" / "config.py"
    assert config.exists()
    assert oct(config.stat().st_mode)[-3:] == "600"
    assert "SECRET_KEY" in config.read_text()
    assert "instruments added: " in first.stdout
    database = tmp_path / "instance" / "vaikuttavuus.sqlite3"
    assert database.exists()
    # Keys and health data: the new instance folder and database are the owner's only.
    assert (tmp_path / "instance").stat().st_mode & 0o777 == 0o700
    for path in (database, *database.parent.glob("vaikuttavuus.sqlite3-*")):
        assert path.stat().st_mode & 0o777 == 0o600, path

    keys_before = config.read_text()
    second = run_cli("init", env=instance_env)
    assert second.returncode == 0, second.stderr
    assert "instruments added" not in second.stdout
    assert "instruments unchanged: 10" in second.stdout
    assert config.read_text() == keys_before  # keys are never regenerated

    listing = run_cli("routes", env=instance_env)
    assert listing.returncode == 0
    assert "patient.start" in listing.stdout


def test_invalid_definition_stops_init_naming_file_field_and_problem(
    instance_env: dict[str, str], tmp_path: Path
) -> None:
    cohorts = tmp_path / "cohorts"
    shutil.copytree(PROJECT_ROOT / "cohorts", cohorts)
    broken = (
        (cohorts / "bph.yaml")
        .read_text()
        .replace("    offset_days: 90\n", "    offset_days: ninety\n")
    )
    (cohorts / "bph.yaml").write_text(broken)
    instance_env["VAIKUTTAVUUS_COHORTS"] = str(cohorts)
    result = run_cli("init", env=instance_env)
    assert result.returncode == 1
    assert "bph.yaml" in result.stderr
    assert "time_points[m3] → offset_days" in result.stderr
    assert "integer" in result.stderr


def test_changed_definition_without_new_version_is_refused(
    instance_env: dict[str, str], tmp_path: Path
) -> None:
    assert run_cli("init", env=instance_env).returncode == 0
    questionnaires = tmp_path / "questionnaires"
    shutil.copytree(PROJECT_ROOT / "questionnaires", questionnaires)
    ipss = questionnaires / "ipss-1.yaml"
    ipss.write_text(ipss.read_text().replace("Eturauhasoireet (IPSS)", "Eturauhasoireet"))
    instance_env["VAIKUTTAVUUS_QUESTIONNAIRES"] = str(questionnaires)
    result = run_cli("init", env=instance_env)
    assert result.returncode == 1
    assert "ipss@1" in result.stderr
    assert "new version" in result.stderr


def test_public_base_url_is_the_one_source_of_link_addresses(
    instance_env: dict[str, str], tmp_path: Path
) -> None:
    """`init --public-base-url` (what scripts/demo runs) writes the address into the instance
    config, and a later command in another shell prints links to it (issue 17: the links
    used to point to port 5000 whatever port the demo served on)."""
    result = run_cli("init", "--public-base-url", "http://127.0.0.1:8123/", env=instance_env)
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "instance" / "config.py").read_text()
    assert config.count('\nPUBLIC_BASE_URL = "http://127.0.0.1:8123"\n') == 1
    assert run_cli("demo-data", "--people", "12", "--no-logins", env=instance_env).returncode == 0
    database = tmp_path / "instance" / "vaikuttavuus.sqlite3"
    with sqlite3.connect(database) as connection:
        (pseudonym,) = connection.execute(
            "SELECT p.pseudonym FROM people p JOIN enrolments e ON e.person_id = p.id "
            "JOIN invitations i ON i.enrolment_id = e.id WHERE i.status = 'open' "
            "AND p.opted_out_at IS NULL AND e.status = 'active' LIMIT 1"
        ).fetchone()
    connection.close()
    link = run_cli("invitations", "link", pseudonym, env=instance_env)
    assert link.returncode == 0, link.stderr
    assert link.stdout.strip().startswith("http://127.0.0.1:8123/r/")

    bad = run_cli("init", "--public-base-url", "127.0.0.1:8123", env=instance_env)
    assert bad.returncode == 2 and "--public-base-url" in bad.stderr


def test_instance_settings_are_replaced_where_they_stand(tmp_path: Path) -> None:
    from vaikuttavuus.cli.core import port_of_public_url, write_instance_setting

    config = tmp_path / "config.py"
    config.write_text('SECRET_KEY = "x"\n# PUBLIC_BASE_URL = "https://example.fi"\nOTHER = 1\n')
    write_instance_setting(tmp_path, "PUBLIC_BASE_URL", "http://127.0.0.1:5001")
    assert config.read_text() == (
        'SECRET_KEY = "x"\nPUBLIC_BASE_URL = "http://127.0.0.1:5001"\nOTHER = 1\n'
    )
    write_instance_setting(tmp_path, "PUBLIC_BASE_URL", "https://links.example.fi")
    assert config.read_text().count("PUBLIC_BASE_URL") == 1
    assert 'PUBLIC_BASE_URL = "https://links.example.fi"' in config.read_text()
    # `serve` listens on the port of a local address by default; a public one is a proxy's.
    assert port_of_public_url("http://127.0.0.1:5001") == 5001
    assert port_of_public_url("http://localhost") == 80
    assert port_of_public_url("https://links.example.fi") is None
