"""Analysis snapshots: building them in the background and serving pages from them.

``snapshot_build``: per pilot, the time to build the snapshots of its default views (every
section of the cohort page without filters, from one read of the data, and the management
pack: :func:`vaikuttavuus.services.snapshots.build_any`, as the worker does after a data
change) against one bare read of the pilot's submitted answers into pandas; the figure is the
slower pilot's ratio.

``snapshot_read``: a pilot lead's cohort page served from a snapshot: every section of both
pilots requested through the app (Flask test client, logged in, in the child process: no
network), after one warm-up request per section; the p95 and median of the request times.

``pdf_from_snapshot``: the management summary PDF of the default period downloaded by a
manager (``/management/<pilot>/summary.pdf``) once its snapshot exists: the request restores
the stored analyses and renders the PDF (labels, figure, WeasyPrint); median of three, the
slower pilot.

A pilot lead's filter click (figures of ``snapshot_read``, no goal of their own): the cohort
page with a filter no snapshot exists for yet — the index dates of the previous calendar
year — on the landing section and on the section of the pilot's declared primary analysis
(:data:`FILTER_SECTIONS`). ``ready_seconds`` is the wait until its figures are there: the
first request, which in this scenario builds the snapshot in the request (the queue is
``immediate``; with a worker the page answers at once with a progress note and the worker
takes this long); then the same page served from the new snapshot (median of five).

All three run on the smallest data set of the run (the quick run's 1 000 people, or the full
run's smallest), or on ``--snapshot-people N`` (the design size:
``scripts/bench --only snapshot_build,snapshot_read,pdf_from_snapshot --snapshot-people 200000``).
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import date
from typing import Any

from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.scenarios.analytics import BARE_READ_SQL, BARE_READS, PILOTS
from bench.tasks import task

READS_PER_SECTION = 5
PASSWORD = "Bench-Salasana-2026"
FILTER_SECTIONS = {"bph": ("overview", "cea"), "older-adults": ("overview", "services")}
"""The sections of a filter click: the landing section and the declared primary analysis's."""
COMPUTING_PAGE = 'http-equiv="refresh"'
"""What only the "being computed" page holds (it reloads itself)."""


def _bare_read(pilot_id: int) -> float:
    import pandas as pd
    from sqlalchemy import text

    from vaikuttavuus.extensions import db

    timings = []
    for _ in range(BARE_READS):
        started = time.perf_counter()
        pd.read_sql(text(BARE_READ_SQL), db.session.connection(), params={"pilot": pilot_id})
        timings.append(time.perf_counter() - started)
    db.session.rollback()
    return min(timings)


def _filter_clicks(client: Any) -> dict[str, Any]:
    """A pilot lead's filter click on each pilot (see the module docstring)."""
    year = date.today().year - 1
    clicks: dict[str, Any] = {}
    for code in PILOTS:
        for section in FILTER_SECTIONS[code]:
            path = f"/pilot/{code}/?section={section}&from={year}-01-01&to={year}-12-31"
            started = time.perf_counter()
            answer = client.get(path)
            ready = time.perf_counter() - started
            page = answer.get_data(as_text=True)
            assert answer.status_code == 200 and COMPUTING_PAGE not in page, path
            served = []
            for _ in range(READS_PER_SECTION):
                started = time.perf_counter()
                answer = client.get(path)
                served.append(time.perf_counter() - started)
                assert answer.status_code == 200, path
            clicks[f"{code}/{section}"] = {
                "ready_seconds": round(ready, 3),
                "served_median_ms": round(1000 * statistics.median(served), 1),
            }
    return clicks


def _login(client: Any, username: str = "bench-lead") -> None:
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        "/auth/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 302, answer.status_code


@task("snapshots", needs_app=False)
def snapshots_task(url: str, people: int) -> dict[str, Any]:
    from vaikuttavuus import create_app
    from vaikuttavuus.extensions import db
    from vaikuttavuus.queries import pilot_by_code
    from vaikuttavuus.services import precompute, snapshots
    from vaikuttavuus.services.cohort_page import SECTIONS
    from vaikuttavuus.services.users import create_user

    app = create_app({"DATABASE_URL": url, "JOB_QUEUE_URL": "immediate"})
    result: dict[str, Any] = {"people": people, "pilots": {}}
    with app.app_context():
        for code in PILOTS:
            pilot = pilot_by_code(db.session, code)
            assert pilot is not None, code
            keys = precompute.default_keys(pilot)
            started = time.perf_counter()
            built = snapshots.build_any(keys)
            build = time.perf_counter() - started
            bare = _bare_read(pilot.id)
            result["pilots"][code] = {
                "build_seconds": round(build, 3),
                "bare_read_seconds": round(bare, 3),
                "ratio_vs_bare_read": round(build / bare, 2) if bare > 0 else None,
                "views": len(keys),
                "statuses": sorted({b.status for b in built}),
            }
        create_user(
            db.session,
            username="bench-lead",
            password=PASSWORD,
            role="pilot_lead",
            pilot_codes=PILOTS,
        )
        create_user(db.session, username="bench-manager", password=PASSWORD, role="management")
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    _login(client)
    timings: list[float] = []
    for code in PILOTS:
        for section in SECTIONS:
            path = f"/pilot/{code}/?section={section}"
            assert client.get(path).status_code == 200, path  # warm-up (and built if missing)
            for _ in range(READS_PER_SECTION):
                started = time.perf_counter()
                answer = client.get(path)
                timings.append(time.perf_counter() - started)
                assert answer.status_code == 200, path
    manager = app.test_client()
    _login(manager, "bench-manager")
    pdf_seconds = {}
    for code in PILOTS:
        path = f"/management/{code}/summary.pdf"
        assert manager.get(path).status_code == 200, path  # warm-up
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            answer = manager.get(path)
            runs.append(time.perf_counter() - started)
            assert answer.status_code == 200 and answer.data.startswith(b"%PDF"), path
        pdf_seconds[code] = round(statistics.median(runs), 3)
    result["pdf_seconds"] = pdf_seconds
    result["filter_clicks"] = _filter_clicks(client)
    ordered = sorted(timings)
    result["read_ms"] = {
        "p95": round(1000 * ordered[max(0, int(0.95 * len(ordered)) - 1)], 1),
        "median": round(1000 * statistics.median(ordered), 1),
        "requests": len(ordered),
    }
    return result


def snapshot_people(context: Context) -> int:
    """The data set of the snapshot scenarios: ``--snapshot-people``, else the run's smallest."""
    chosen = context.options.get("snapshot_people")
    if chosen is not None and chosen <= 0:
        raise SystemExit("--snapshot-people must be a positive number of people")
    return int(chosen) if chosen else min(context.sizes.people)


def run_snapshots(
    context: Context, backend: str | None, _wanted: frozenset[str]
) -> dict[str, Figures]:
    assert backend is not None
    people = snapshot_people(context)
    workspace = context.workspace
    workspace.ensure_datasets(backend, [people])
    context.say(f"{backend}: snapshots, {people} people")
    measured = workspace.run_task(
        "snapshots", url=workspace.dataset(backend, people), people=people, timeout=3600
    )
    pilots = measured["pilots"]
    slower = max(pilots, key=lambda code: pilots[code]["ratio_vs_bare_read"] or 0)
    return {
        "snapshot_build": {
            "people": people,
            "ratio_vs_bare_read": pilots[slower]["ratio_vs_bare_read"],
            "seconds": pilots[slower]["build_seconds"],
            "pilots": pilots,
        },
        "pdf_from_snapshot": {
            "people": people,
            "seconds": max(measured["pdf_seconds"].values()),
            "pilots": measured["pdf_seconds"],
        },
        "snapshot_read": {
            "people": people,
            "p95_ms": measured["read_ms"]["p95"],
            "median_ms": measured["read_ms"]["median"],
            "requests": measured["read_ms"]["requests"],
            "filter_clicks": measured["filter_clicks"],
            "filtered_view_ready_seconds": max(
                click["ready_seconds"] for click in measured["filter_clicks"].values()
            ),
        },
    }


register(
    Scenario(
        names=("snapshot_build", "snapshot_read", "pdf_from_snapshot"),
        run=run_snapshots,
        per_backend=True,
        description="snapshot build vs a bare read; cohort pages and the management PDF "
        "served from snapshots",
    )
)
