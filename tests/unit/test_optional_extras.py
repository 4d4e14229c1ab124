"""Optional extras that the operations guide relies on are declared in ``pyproject.toml``."""

from __future__ import annotations

import re
import tomllib

from vaikuttavuus.paths import PROJECT_ROOT


def test_the_redis_rate_limit_store_has_an_extra_and_the_guide_names_it() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = project["project"]["optional-dependencies"]
    assert any(re.fullmatch(r"limits\[redis\]>=\d+(\.\d+)*", spec) for spec in extras["redis"])
    guide = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "RATELIMIT_STORAGE_URI" in guide and "redis://" in guide
    assert "pip install 'vaikuttavuus[redis]'" in guide
