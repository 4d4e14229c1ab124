"""What a run measured: figures per scenario, the machine, the goals, ``results.json`` and the
printed table.

``results.json`` is ``{"scenarios": {NAME: {FIGURE: value, …}, …}, "machine": {…}, "quick":
bool, "goals": {"NAME.FIGURE": {"goal": text, "measured": value, "met": bool}, …}, …}``.
Scenario names are the base names of :mod:`bench.scenarios` for SQLite (the default backend)
and ``NAME_postgresql`` for PostgreSQL, so the figures the issue asks for
(``page_get.ratio_vs_bare``, ``submit_post.per_s``, …) always name the SQLite run.
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
BACKEND_SUFFIXES = {"sqlite": "", "postgresql": "_postgresql"}

Figures = dict[str, Any]


def scenario_key(name: str, backend: str | None) -> str:
    """The results name of a scenario on a backend (SQLite keeps the plain name)."""
    if backend is None:
        return name
    return name + BACKEND_SUFFIXES[backend]


def base_name(key: str) -> str:
    """``submit_post_postgresql`` → ``submit_post``."""
    for suffix in BACKEND_SUFFIXES.values():
        if suffix and key.endswith(suffix):
            return key.removesuffix(suffix)
    return key


# -- goals ---------------------------------------------------------------------------------------


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Goal:
    """A target of ``performance.md``: ``scenario.figure <comparison> threshold``."""

    scenario: str
    figure: str
    comparison: str
    threshold: float
    unit: str = ""

    @property
    def text(self) -> str:
        return f"{self.comparison} {_number(self.threshold)}{self.unit}"

    def met(self, value: Any) -> bool | None:
        """Whether ``value`` meets the goal (``None`` when nothing numeric was measured)."""
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return None
        return bool(_COMPARISONS[self.comparison](float(value), self.threshold))


GOALS: tuple[Goal, ...] = (
    Goal("page_get", "ratio_vs_bare", ">=", 0.5, "×"),
    Goal("page_get", "p95_ms", "<", 100, " ms"),
    Goal("submit_post", "per_s", ">=", 300, "/s"),
    Goal("submit_post", "p95_ms", "<", 150, " ms"),
    Goal("scoring_1m", "speedup_vs_loop", ">=", 50, "×"),
    Goal("scoring_1m", "seconds", "<", 2, " s"),
    Goal("report", "ratio_vs_bare_read", "<=", 3, "×"),
    Goal("report", "peak_rss_mb", "<", 2048, " MiB"),
    Goal("report", "scaling_large_vs_small", "<=", 1.1, "×"),
    Goal("bootstrap_10k", "seconds", "<", 1, " s"),
    Goal("cli_help", "seconds", "<", 0.5, " s"),
    Goal("snapshot_read", "p95_ms", "<", 300, " ms"),
    Goal("snapshot_build", "ratio_vs_bare_read", "<=", 3, "×"),
    Goal("pdf_from_snapshot", "seconds", "<", 10, " s"),
    Goal("pdf", "seconds", "<", 10, " s"),
    Goal("export", "rss_growth_mb", "<", 64, " MiB"),
    Goal("export", "scaling_large_vs_small", "<=", 1.1, "×"),
    Goal("import_1m", "seconds_per_1m", "<", 60, " s"),
    Goal("import_1m", "all_or_nothing", ">=", 1, ""),
    Goal("import_responses_1m", "seconds_per_1m", "<", 60, " s"),
    Goal("import_responses_1m", "all_or_nothing", ">=", 1, ""),
    Goal("clinician_page", "p95_under_load_ms", "<", 300, " ms"),
    Goal("soak", "error_rate", "<=", 0, ""),
    Goal("soak", "rss_growth_mb_per_10min", "<", 2, " MiB"),
)
"""Per scenario base name. ``scaling_large_vs_small`` is the time per 10 000 people at the
largest size divided by the time per 10 000 at the smallest: "flat or falling" is ≤ 1 (10 %
allowed for noise). ``import_1m.seconds_per_1m`` is the measured time scaled to 1 000 000 rows
(the measured time itself when 1 000 000 rows were imported); ``import_responses_1m`` counts
answers (``rows``; ``file_rows`` are the file's person × time point × instrument rows).
``all_or_nothing`` is 1 when a file with one bad row at its end stored nothing."""

HEADLINES: dict[str, tuple[str, ...]] = {
    "page_get": ("per_s", "bare_per_s", "p50_ms", "bare_p95_ms", "requests", "errors"),
    "submit_post": ("ratio_vs_bare", "bare_per_s", "p50_ms", "submits", "errors", "verified"),
    "scoring_1m": ("loop_seconds_extrapolated", "rows"),
    "report": ("seconds", "bare_read_seconds", "slope_s_per_10k", "people"),
    "bootstrap_10k": ("replicates", "patients"),
    "pdf": ("compute_seconds", "render_seconds", "people"),
    "export": ("seconds", "rows", "peak_rss_mb", "slope_s_per_10k", "people"),
    "import_1m": ("seconds", "rows", "rows_per_s"),
    "import_responses_1m": ("seconds", "rows", "file_rows", "rows_per_s"),
    "invitations": ("first_refresh_seconds", "steady_refresh_seconds", "people"),
    "clinician_page": ("p95_ms", "per_s", "ratio_vs_bare", "under_load_errors"),
    "soak": ("minutes", "requests", "errors", "clinician_p95_ms", "wal_max_mb", "rss_end_mb"),
    "snapshot_build": ("seconds", "people"),
    "snapshot_read": ("median_ms", "filtered_view_ready_seconds", "people"),
}
"""Figures printed besides the goals (everything is in ``results.json``)."""


def evaluate(scenarios: Mapping[str, Figures]) -> dict[str, dict[str, Any]]:
    """Every goal for every scenario measured (on each backend): goal text, value, met."""
    evaluated: dict[str, dict[str, Any]] = {}
    for key, figures in scenarios.items():
        for goal in GOALS:
            if goal.scenario != base_name(key) or goal.figure not in figures:
                continue
            value = figures[goal.figure]
            evaluated[f"{key}.{goal.figure}"] = {
                "goal": goal.text,
                "measured": value,
                "met": goal.met(value),
            }
    return evaluated


# -- machine -------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _commit() -> str | None:
    """The checked-out commit, read from ``.git`` (no git command is run)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text(encoding="utf-8").strip()
        packed = git / "packed-refs"
        if packed.exists():
            for line in packed.read_text(encoding="utf-8").splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
    except OSError:
        pass
    return None


def machine_info(postgresql_version: str | None = None) -> dict[str, Any]:
    """CPU, memory, load, operating system, Python and database versions, date."""
    import numpy
    import pandas
    import sqlalchemy

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "load_average_at_start": load,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql_version,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
    }


# -- the run's results ---------------------------------------------------------------------------


@dataclass
class Results:
    """Figures per scenario, plus the run's settings and notes."""

    quick: bool
    command: str
    machine: dict[str, Any] = field(default_factory=dict)
    scenarios: dict[str, Figures] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds_total: float | None = None

    def add(self, key: str, figures: Figures) -> None:
        self.scenarios[key] = dict(figures)

    def fail(self, key: str, message: str) -> None:
        self.failures[key] = message

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "command": self.command,
            "seconds_total": self.seconds_total,
            "machine": self.machine,
            "scenarios": self.scenarios,
            "goals": evaluate(self.scenarios),
            "failures": self.failures,
            "notes": self.notes,
        }


def merge_previous(results: Results, path: Path) -> None:
    """Keep the scenarios of an earlier run (same ``quick``) that this run did not measure, so
    ``--only`` updates part of ``results.json`` instead of replacing it."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if previous.get("quick") != results.quick:
        return
    for key, figures in previous.get("scenarios", {}).items():
        if key not in results.scenarios and key not in results.failures:
            results.scenarios[key] = {**figures, "from_earlier_run": True}


def write_json(data: Mapping[str, Any], path: Path) -> None:
    """Write ``data`` as indented JSON through a temporary file (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=False, default=_jsonable)
            stream.write("\n")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- the printed table ---------------------------------------------------------------------------


def _number(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return _number(float(value)) if abs(value) >= 1000 else str(value)
    if isinstance(value, float):
        return _number(value)
    if value is None:
        return "–"
    return str(value)


def table_rows(scenarios: Mapping[str, Figures]) -> list[tuple[str, str, str, str, str]]:
    """(scenario, figure, goal, measured, met) rows: the goals first, then the headlines."""
    goals = evaluate(scenarios)
    rows: list[tuple[str, str, str, str, str]] = []
    for key, figures in scenarios.items():
        shown: list[str] = []
        for name, entry in goals.items():
            scenario, _, figure = name.partition(".")
            if scenario != key:
                continue
            met = entry["met"]
            verdict = "–" if met is None else ("yes" if met else "NO")
            rows.append((key, figure, entry["goal"], format_value(entry["measured"]), verdict))
            shown.append(figure)
        for figure in HEADLINES.get(base_name(key), ()):
            if figure in figures and figure not in shown:
                rows.append((key, figure, "", format_value(figures[figure]), ""))
    return rows


def format_table(scenarios: Mapping[str, Figures]) -> str:
    """The table ``scripts/bench`` prints (plain text, aligned columns)."""
    header = ("scenario", "figure", "goal", "measured", "met")
    rows = [header, *table_rows(scenarios)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    previous = None
    for number, row in enumerate(rows):
        scenario = row[0] if row[0] != previous else ""
        previous = row[0]
        cells = (scenario, *row[1:])
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(scenarios: Mapping[str, Figures], keys: Iterable[str] | None = None) -> str:
    """The same rows as a Markdown table (for ``docs/performance.md``)."""
    wanted = set(keys) if keys is not None else None
    rows = [row for row in table_rows(scenarios) if wanted is None or row[0] in wanted]
    lines = ["| scenario | figure | goal | measured | met? |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(cell or ' ' for cell in row)} |" for row in rows]
    return "\n".join(lines)
