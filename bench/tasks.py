"""The child-process side of the benchmark: ``python -m bench.tasks NAME ARGS_JSON RESULT_FILE``.

A task is a function registered with :func:`task`; it gets the JSON arguments as keyword
arguments and returns a JSON-ready dict, written to ``RESULT_FILE``. Tasks that touch the
database run inside an app context built the way the real commands build it
(:func:`vaikuttavuus.create_app`: instance config from ``VAIKUTTAVUUS_INSTANCE``, database from
``DATABASE_URL``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TaskFunction = Callable[..., dict[str, Any]]

TASK_MODULES = (
    "bench.datasets",
    "bench.scenarios.analytics",
    "bench.scenarios.compute",
    "bench.scenarios.http",
    "bench.scenarios.imports",
    "bench.scenarios.invitations",
    "bench.scenarios.services",
    "bench.scenarios.soak",
)
"""Modules whose tasks are registered when a child starts."""


@dataclass(frozen=True)
class Task:
    function: TaskFunction
    needs_app: bool


TASKS: dict[str, Task] = {}


def task(name: str, *, needs_app: bool = True) -> Callable[[TaskFunction], TaskFunction]:
    """Register ``function`` as the task ``name`` (``needs_app``: run in an app context)."""

    def register(function: TaskFunction) -> TaskFunction:
        TASKS[name] = Task(function, needs_app)
        return function

    return register


@contextlib.contextmanager
def app_for(database_url: str) -> Iterator[Any]:
    """An app context on another database (instance config and environment otherwise), for
    tasks that visit several databases in one process."""
    from vaikuttavuus import create_app
    from vaikuttavuus.extensions import db

    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def run(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a registered task in this process (in an app context when it needs one)."""
    for module in TASK_MODULES:
        importlib.import_module(module)
    chosen = TASKS[name]
    if not chosen.needs_app:
        return chosen.function(**arguments)
    from vaikuttavuus import create_app
    from vaikuttavuus.extensions import db

    app = create_app()
    with app.app_context():
        try:
            return chosen.function(**arguments)
        finally:
            db.session.remove()
            db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m bench.tasks NAME ARGS_JSON RESULT_FILE", file=sys.stderr)
        return 2
    name, arguments, result_file = args
    result = run(name, json.loads(arguments))
    Path(result_file).write_text(json.dumps(result, default=_plain), encoding="utf-8")
    return 0


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    # Run through the importable module, whose registry the scenario modules fill.
    from bench.tasks import main as registered_main

    raise SystemExit(registered_main())
