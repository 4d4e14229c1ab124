"""The cohort analytics package keeps one direction of imports: each module imports only the
modules listed before it (publication → recorded rows → data → sections → the package), so no
section imports another section or the presentation layer, and nothing in it imports the
views."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vaikuttavuus.services import analytics

PACKAGE = "vaikuttavuus.services.analytics"
ORDER = (
    "publication",
    "recorded",
    "data",
    "participation",
    "outcomes",
    "costs",
    "cost_effectiveness",
    "primary",
    "funnel",
    "services",
    "__init__",
)
SECTIONS = set(ORDER[ORDER.index("data") + 1 : -1])
FORBIDDEN = ("vaikuttavuus.views", "vaikuttavuus.services.cohort_view", "flask")


def _imports(module: str) -> set[str]:
    source = Path(analytics.__file__).with_name(f"{module}.py").read_text("utf-8")
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_module_of_the_package_is_in_the_order() -> None:
    present = {path.stem for path in Path(analytics.__file__).parent.glob("*.py")}
    assert present == set(ORDER)


@pytest.mark.parametrize("module", ORDER)
def test_imports_point_one_way(module: str) -> None:
    imported = _imports(module)
    earlier = set(ORDER[: ORDER.index(module)])
    for name in imported:
        assert not name.startswith(FORBIDDEN), f"{module} imports {name}"
        if name.startswith(PACKAGE + "."):
            target = name.removeprefix(PACKAGE + ".").split(".")[0]
            assert target in earlier, f"{module} imports {target}, which comes after it"
            if module in SECTIONS:
                assert target not in SECTIONS, f"section {module} imports section {target}"
