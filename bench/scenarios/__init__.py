"""The scenarios of ``../shared/performance.md``, one module per area.

A :class:`Scenario` produces one or more result names (``page_get`` and ``submit_post`` share
their servers, ``report`` and ``pdf`` their computation); its ``run`` gets the run's
:class:`Context`, the backend (``None`` for scenarios without a database) and the names asked
for, and returns figures per name. The parent process only orchestrates: the measured work
runs in child processes (:meth:`bench.workspace.Workspace.run_task`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.results import Figures
from bench.workspace import Sizes, Workspace

MODULES = ("compute", "analytics", "services", "imports", "http", "invitations", "soak")
"""Scenario modules, in the order their scenarios run."""


@dataclass
class Context:
    """What a scenario needs from the run."""

    workspace: Workspace
    sizes: Sizes
    backends: tuple[str, ...]
    quick: bool
    say: Callable[[str], None]
    checkpoint: Callable[[str, str | None, Figures], None] = lambda _name, _backend, _figures: None
    """Record a scenario's figures so far (kept in ``results.json`` if the run stops)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Settings of particular scenarios (``soak_minutes``)."""

    @property
    def primary_backend(self) -> str:
        """The backend of the scenarios that run once (the PDF): the first one chosen."""
        return self.backends[0]


Runner = Callable[[Context, str | None, frozenset[str]], dict[str, Figures]]


@dataclass(frozen=True)
class Scenario:
    """A group of result names measured together."""

    names: tuple[str, ...]
    run: Runner
    per_backend: bool
    description: str
    in_quick: bool = True
    """Whether a quick run includes it without ``--only``."""
    on_request_only: bool = False
    """Runs only when named in ``--only`` (the hour-long soak)."""


_REGISTERED: list[Scenario] = []


def register(scenario: Scenario) -> Scenario:
    """Add a scenario (called by the scenario modules when imported)."""
    if all(scenario.names != known.names for known in _REGISTERED):
        _REGISTERED.append(scenario)
    return scenario


def all_scenarios() -> list[Scenario]:
    """Every scenario, in running order."""
    for module in MODULES:
        importlib.import_module(f"bench.scenarios.{module}")
    order = {f"bench.scenarios.{m}": i for i, m in enumerate(MODULES)}
    return sorted(_REGISTERED, key=lambda s: order.get(s.run.__module__, len(order)))


def scenario_names(*, quick: bool = False, default_run: bool = False) -> list[str]:
    """Every result base name, in running order (``quick``: those a quick run includes;
    ``default_run``: without those that run only when asked for)."""
    return [
        name
        for scenario in all_scenarios()
        if (scenario.in_quick or not quick) and not (default_run and scenario.on_request_only)
        for name in scenario.names
    ]
