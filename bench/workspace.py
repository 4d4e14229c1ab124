"""The run's workspace: a temporary instance folder, the database backends, the synthetic data
sets and the child processes that do the measured work.

* One instance folder per run, with a ``config.py`` written by the app's own
  :func:`vaikuttavuus.cli.core.ensure_instance_config` (fresh random keys); every child process
  and server gets it through ``VAIKUTTAVUUS_INSTANCE`` and its database through
  ``DATABASE_URL``.
* SQLite databases are files in the workspace; PostgreSQL is one throwaway server per run
  (:mod:`tests.support.postgres`, as the ``postgres`` user, **durable**: fsync and synchronous
  commit on, as in production), one database per data set.
* A migrated database with the definitions (``vaikuttavuus init``) is the template; a data set
  of N people is a copy of it filled as ``vaikuttavuus demo-data --people N`` fills it (the
  synthetic generator, bulk-loaded; :mod:`bench.datasets`); scenarios that write work on a copy
  of a data set. Every data set is built once per run.
* Measured work runs in a child process (:mod:`bench.tasks`), so that its peak memory and
  start-up are its own and the parent stays small.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import ROOT

BACKENDS = ("sqlite", "postgresql")
DATA_SEED = 2026


class TaskError(RuntimeError):
    """A child process failed; the message ends with the tail of its log."""


@dataclass(frozen=True)
class HttpSizes:
    """Bounds of the HTTP scenarios (per load phase) and the server settings."""

    workers: int
    threads: int
    concurrency: int
    rounds: int
    get_links: int
    get_requests: int
    submits_per_round: int
    max_seconds: float


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is in a quick or a full run."""

    people: tuple[int, ...]
    import_rows: int
    scoring_rows: int
    loop_sample: int
    bootstrap_replicates: int
    bootstrap_patients: int
    repeats: int
    http: HttpSizes
    every_backend: frozenset[str] | None
    """Scenarios run on every chosen backend (``None``: all); the others on the first only."""
    one_process: bool
    """Measure all sizes of the report and the export in one child process (saves start-ups;
    memory peaks are still per size, from a reset high-water mark)."""
    xlsx_at_every_size: bool
    """Export the wide XLSX at every size (else at the largest only)."""

    @property
    def largest(self) -> int:
        return max(self.people)


QUICK = Sizes(
    people=(1_000, 2_000, 5_000),
    import_rows=100_000,
    scoring_rows=1_000_000,
    loop_sample=20_000,
    bootstrap_replicates=10_000,
    bootstrap_patients=10_000,
    repeats=3,
    http=HttpSizes(
        workers=2,
        threads=4,
        concurrency=8,
        rounds=1,
        get_links=40,
        get_requests=4_000,
        submits_per_round=250,
        max_seconds=8.0,
    ),
    every_backend=frozenset({"page_get", "submit_post", "clinician_page"}),
    one_process=True,
    xlsx_at_every_size=False,
)
FULL = Sizes(
    people=(10_000, 50_000, 200_000),
    import_rows=1_000_000,
    scoring_rows=1_000_000,
    loop_sample=50_000,
    bootstrap_replicates=10_000,
    bootstrap_patients=10_000,
    repeats=5,
    http=HttpSizes(
        workers=2,
        threads=4,
        concurrency=8,
        rounds=3,
        get_links=500,
        get_requests=20_000,
        submits_per_round=1_000,
        max_seconds=15.0,
    ),
    every_backend=None,
    one_process=False,
    xlsx_at_every_size=True,
)


@dataclass
class _Backend:
    name: str
    folder: Path
    server: Any = None  # tests.support.postgres.PostgresServer
    template: str | None = None
    datasets: dict[int, str] = field(default_factory=dict)

    def url(self, database: str) -> str:
        if self.name == "sqlite":
            return f"sqlite:///{self.folder / (database + '.sqlite3')}"
        return str(self.server.url(database))


def database_name(url: str) -> str:
    """The database of a URL: the file stem (SQLite) or the path (PostgreSQL)."""
    if url.startswith("sqlite"):
        return Path(url.removeprefix("sqlite:///")).stem
    return url.rsplit("/", 1)[1]


def checkpoint_sqlite(url: str) -> None:
    """Fold a SQLite file's write-ahead log into it, so copying the file copies everything."""
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Workspace:
    """Temporary folders, backends, data sets and child processes of one run."""

    def __init__(self, *, keep: bool = False, say: Callable[[str], None] = print) -> None:
        from vaikuttavuus.cli.core import ensure_instance_config

        self.root = Path(tempfile.mkdtemp(prefix="vaikuttavuus-bench-"))
        self.keep = keep
        self.say = say
        self.instance = self.root / "instance"
        ensure_instance_config(self.instance)
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self._backends: dict[str, _Backend] = {}
        self.build_seconds: dict[str, dict[str, float]] = {}
        self.postgresql_version: str | None = None

    # -- environment -----------------------------------------------------------------------

    def env(self, database_url: str | None = None) -> dict[str, str]:
        """The environment of a child process or server."""
        env = {
            **os.environ,
            "VAIKUTTAVUUS_INSTANCE": str(self.instance),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        return env

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    # -- child processes -------------------------------------------------------------------

    def run_command(
        self, name: str, command: list[str], database_url: str | None, timeout: float
    ) -> float:
        """Run a command with the run's environment; returns its wall-clock seconds."""
        log = self.log_path(name)
        started = time.perf_counter()
        with log.open("ab") as stream:
            try:
                finished = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=self.env(database_url),
                    stdout=stream,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise TaskError(f"{name}: no result in {timeout:.0f} s\n{_tail(log)}") from error
        if finished.returncode != 0:
            raise TaskError(f"{name}: exit code {finished.returncode}\n{_tail(log)}")
        return time.perf_counter() - started

    def run_task(
        self, task: str, database_url: str | None = None, *, timeout: float = 1800, **kwargs: Any
    ) -> dict[str, Any]:
        """Run ``bench.tasks`` task ``task`` in a child process; returns its JSON result."""
        result_file = self.root / f"result-{task}-{time.monotonic_ns()}.json"
        command = [sys.executable, "-m", "bench.tasks", task, json.dumps(kwargs), str(result_file)]
        self.run_command(f"task-{task}", command, database_url, timeout)
        try:
            result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise TaskError(
                f"task {task} wrote no result\n{_tail(self.log_path('task-' + task))}"
            ) from error
        result_file.unlink(missing_ok=True)
        return result

    def vaikuttavuus(self, name: str, args: list[str], database_url: str, timeout: float) -> float:
        """Run the ``vaikuttavuus`` command (``python -m vaikuttavuus.cli``)."""
        command = [sys.executable, "-m", "vaikuttavuus.cli", *args]
        return self.run_command(name, command, database_url, timeout)

    # -- backends and data sets --------------------------------------------------------------

    def backend(self, name: str) -> _Backend:
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name}")
        if name not in self._backends:
            folder = self.root / name
            folder.mkdir()
            backend = _Backend(name=name, folder=folder)
            if name == "postgresql":
                from tests.support import postgres

                self.say("starting a throwaway PostgreSQL server (durable: fsync on)")
                backend.server = postgres.start(durable=True)
                self.postgresql_version = backend.server.psql("SHOW server_version").strip()
            self._backends[name] = backend
        return self._backends[name]

    def template(self, backend_name: str) -> str:
        """A migrated database with the definitions loaded (``vaikuttavuus init``)."""
        backend = self.backend(backend_name)
        if backend.template is None:
            url = self._create(backend, "template")
            self.say(f"{backend_name}: vaikuttavuus init (schema and definitions)")
            self.vaikuttavuus(f"init-{backend_name}", ["init"], url, timeout=600)
            if backend_name == "sqlite":
                checkpoint_sqlite(url)
            backend.template = url
        return backend.template

    def dataset(self, backend_name: str, people: int) -> str:
        """The synthetic data set of ``people`` people (built on first use; do not write to
        it — take a :meth:`copy`)."""
        self.ensure_datasets(backend_name, [people])
        return self.backend(backend_name).datasets[people]

    def ensure_datasets(self, backend_name: str, sizes: list[int] | tuple[int, ...]) -> None:
        """Build the data sets of these sizes that do not exist yet, in one child process."""
        backend = self.backend(backend_name)
        missing = sorted(set(sizes) - set(backend.datasets))
        if not missing:
            return
        template = self.template(backend_name)
        targets = [
            [people, self.copy(backend_name, template, f"people_{people}")] for people in missing
        ]
        self.say(f"{backend_name}: synthetic data sets of {', '.join(map(str, missing))} people")
        built = self.run_task("build_datasets", databases=targets, seed=DATA_SEED, timeout=6 * 3600)
        for people, url in targets:
            if backend_name == "sqlite":
                checkpoint_sqlite(url)
            backend.datasets[people] = url
            seconds = built[str(people)]["seconds"]
            self.build_seconds.setdefault(backend_name, {})[str(people)] = seconds

    def copy(self, backend_name: str, source_url: str, name: str) -> str:
        """A copy of a database under a new name (SQLite: file copy; PostgreSQL: template)."""
        backend = self.backend(backend_name)
        target = backend.url(name)
        if backend_name == "sqlite":
            source = Path(source_url.removeprefix("sqlite:///"))
            destination = Path(target.removeprefix("sqlite:///"))
            for suffix in ("", "-wal"):
                if Path(f"{source}{suffix}").exists():
                    shutil.copyfile(f"{source}{suffix}", f"{destination}{suffix}")
        else:
            backend.server.psql(f"DROP DATABASE IF EXISTS {name}")
            backend.server.psql(f"CREATE DATABASE {name} TEMPLATE {database_name(source_url)}")
        return target

    def drop(self, backend_name: str, url: str) -> None:
        """Remove a database copy that is no longer needed."""
        backend = self.backend(backend_name)
        if backend_name == "sqlite":
            path = url.removeprefix("sqlite:///")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            backend.server.psql(f"DROP DATABASE IF EXISTS {database_name(url)} WITH (FORCE)")

    def _create(self, backend: _Backend, name: str) -> str:
        if backend.name == "postgresql":
            backend.server.psql(f"CREATE DATABASE {name}")
        return backend.url(name)

    # -- clean-up ----------------------------------------------------------------------------

    def close(self) -> None:
        for backend in self._backends.values():
            if backend.server is not None:
                backend.server.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def _tail(path: Path, characters: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"
