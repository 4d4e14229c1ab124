"""The production install is locked (issue 16, item 8): ``requirements.lock`` pins every
dependency of ``pyproject.toml`` (and of its ``redis`` extra) to versions that satisfy it,
with hashes, and the demo and the deployment guide install from it."""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from vaikuttavuus.paths import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def _pins() -> tuple[dict[str, list[Version]], list[str]]:
    """Pinned versions per package, and the pins that have no hash."""
    pins: dict[str, list[Version]] = defaultdict(list)
    unhashed = []
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"))
    for block in blocks:
        match = PIN.match(block)
        if match is None:
            continue
        pins[canonicalize_name(match.group(1))].append(Version(match.group(2)))
        if "--hash=sha256:" not in block:
            unhashed.append(match.group(0))
    return pins, unhashed


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["redis"],
    ]
    pins, unhashed = _pins()
    assert unhashed == []
    assert len(pins) > len(wanted)  # the dependencies' own dependencies are locked too
    problems = []
    for text in wanted:
        requirement = Requirement(text)
        versions = pins.get(canonicalize_name(requirement.name), [])
        if not versions:
            problems.append(f"{requirement.name} is not in requirements.lock")
        problems += [
            f"{requirement.name} {version} does not satisfy {requirement.specifier}"
            for version in versions
            if version not in requirement.specifier
        ]
        for extra in requirement.extras:  # e.g. psycopg[binary], limits[redis]
            if requirement.name == "psycopg" and extra == "binary":
                assert "psycopg-binary" in pins
            if requirement.name == "limits" and extra == "redis":
                assert "redis" in pins
    assert problems == [], "run scripts/lock: " + "; ".join(problems)


def test_the_demo_and_the_deployment_guide_install_from_the_lock() -> None:
    lib = (PROJECT_ROOT / "scripts" / "lib.sh").read_text(encoding="utf-8")
    assert "--require-hashes -r \"$ROOT/requirements.lock\"" in lib
    guide = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r requirements.lock" in guide
    assert "pip-audit" in guide
