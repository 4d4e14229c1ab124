"""``scripts/bench [--quick] [--backend sqlite|postgresql|both] [--only SCENARIO[,…]]``.

Runs the scenarios (all by default) on the chosen backends (both by default; a quick run takes
only the HTTP scenarios on every backend and the others on the first one, see
:data:`bench.workspace.QUICK`), prints progress and then a table of every goal and the main
figures, and writes ``bench/results.json``
(after each scenario, so an interrupted run keeps what it measured). With ``--only`` the other
scenarios of an earlier run of the same kind (quick or full) are kept in the file. The exit
code is 1 when a scenario failed to run (a goal not met is reported, not an error).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from bench.results import (
    RESULTS_PATH,
    Figures,
    Results,
    format_table,
    machine_info,
    merge_previous,
    scenario_key,
    write_json,
)
from bench.scenarios import Context, all_scenarios, scenario_names
from bench.workspace import BACKENDS, FULL, QUICK, Workspace


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Run the performance scenarios of ../shared/performance.md.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "Reduced sizes (1k/2k/5k people, 100k import rows, 8 s load phases); only the "
            "HTTP scenarios on every backend; under ten minutes."
        ),
    )
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="Database backend(s) of the database scenarios (default: both; the first one "
        "also runs the scenarios that a quick run does once).",
    )
    parser.add_argument(
        "--only",
        metavar="SCENARIO[,…]",
        default=None,
        help="Run only these scenarios: " + ", ".join(scenario_names()) + ".",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_PATH, help="Where to write the results (JSON)."
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temporary workspace (databases, logs)."
    )
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=60.0,
        help="Length of the soak (scenario 'soak', run with --only soak; default 60).",
    )
    parser.add_argument(
        "--snapshot-people",
        type=int,
        default=None,
        metavar="N",
        help="Data set size of the snapshot scenarios (snapshot_build, snapshot_read, "
        "pdf_from_snapshot; default: the run's smallest, e.g. 200000 for the design size).",
    )
    parser.add_argument("--list", action="store_true", help="List the scenarios and exit.")
    return parser.parse_args(argv)


def chosen_names(only: str | None, *, quick: bool = False) -> list[str]:
    """The scenario names asked for, in running order; raises ``SystemExit`` on a typo."""
    known = scenario_names()
    if not only:
        return scenario_names(quick=quick, default_run=True)
    asked = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in asked if name not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [name for name in known if name in asked]


class Progress:
    """Progress lines with the time since the start, on stderr."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed():7.1f} s] {message}", file=sys.stderr, flush=True)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (e.g. from ``timeout``) into ``SystemExit``, so the servers, the
    PostgreSQL server and the workspace are cleaned up and the results so far stay written."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    if args.list:
        for scenario in all_scenarios():
            print(f"{', '.join(scenario.names):<28} {scenario.description}")
        return 0
    names = chosen_names(args.only, quick=args.quick)
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    sizes = QUICK if args.quick else FULL
    say = Progress()
    command = "scripts/bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    results = Results(quick=args.quick, command=command.strip())
    results.machine = machine_info()
    workspace = Workspace(keep=args.keep, say=say)
    say(f"workspace {workspace.root}; scenarios: {', '.join(names)}; backends: {backends}")
    context = Context(
        workspace=workspace,
        sizes=sizes,
        backends=backends,
        quick=args.quick,
        say=say,
        options={"soak_minutes": args.soak_minutes, "snapshot_people": args.snapshot_people},
    )

    def scenario_backends(
        scenario_names: tuple[str, ...], per_backend: bool
    ) -> tuple[str | None, ...]:
        if not per_backend:
            return (None,)
        every = sizes.every_backend
        if every is None or set(scenario_names) & every:
            return backends
        return backends[:1]

    def save() -> None:
        results.seconds_total = round(say.elapsed(), 1)
        results.machine["postgresql"] = workspace.postgresql_version
        data = results.to_json()
        data["settings"] = {
            "backends": list(backends),
            "sizes": asdict(sizes),
            "data_set_build_seconds": workspace.build_seconds,
        }
        if args.only:
            merge_previous(results, args.out)
            data["scenarios"] = results.scenarios
        write_json(data, args.out)

    def checkpoint(name: str, backend: str | None, figures: Figures) -> None:
        results.add(scenario_key(name, backend), {**figures, "partial": True})
        save()

    context.checkpoint = checkpoint

    try:
        for scenario in all_scenarios():
            wanted = frozenset(name for name in scenario.names if name in names)
            if not wanted:
                continue
            for backend in scenario_backends(scenario.names, scenario.per_backend):
                try:
                    produced = scenario.run(context, backend, wanted)
                except Exception as error:
                    trace = traceback.format_exc()
                    say(f"FAILED {'/'.join(sorted(wanted))} ({backend or 'no database'}): {error}")
                    print(trace, file=sys.stderr)
                    for name in wanted:
                        results.fail(scenario_key(name, backend), f"{error}"[-2000:])
                    continue
                for name, figures in produced.items():
                    results.add(scenario_key(name, backend), figures)
                save()
    finally:
        workspace.close()
    save()
    print()
    print(format_table(results.scenarios))
    print()
    print(f"{'quick' if args.quick else 'full'} run: {say.elapsed():.0f} s; results in {args.out}")
    if results.failures:
        print(f"failed: {', '.join(sorted(results.failures))}", file=sys.stderr)
        return 1
    return 0
