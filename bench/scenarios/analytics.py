"""The cohort report, the management PDF and the exports, at several data-set sizes.

``report``: per data set (one child process each), for both pilots: the time to compute every
figure of the management summary of the newest released year —
:func:`~vaikuttavuus.services.management_report.released_cohort` (one read of the cohort
window, cut into the year and its quarters) and
:func:`~vaikuttavuus.services.management_report.management_context` (the answer, key figures,
trend, main figure; default bootstrap) — then one bare read of the pilot's submitted
answers into pandas (``pd.read_sql``), timed after the report so it finds the caches at least
as warm. The peak resident memory is that of the child while computing (interpreter and
libraries included).

``pdf``: at the largest size, on the first backend: the report's computation plus rendering
its context to the A4 PDF (``render_pdf``, WeasyPrint) — together the work of
``vaikuttavuus report management``; the figure is the slower pilot.

``export``: per data set, the pseudonymised long CSV of both pilots (every answer, dates
shifted ± 30 days) through the streaming writer — its time per size, scaling and memory are
the figures — and the wide XLSX (one row per person; at every size in a full run, at the
largest in a quick one). The peak resident memory of each export counts from just before it
starts (the high-water mark is reset).

A full run measures each size in a child process of its own; a quick run measures all sizes
in one (saving the start-ups; the memory peaks still count from a reset high-water mark).

Sizes are compared by the time per 10 000 people: "flat or falling" means the largest data set
costs no more per person than the smallest.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import memory
from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.tasks import task

PILOTS = ("bph", "older-adults")
LANGUAGE = "fi"
EXPORT_DATE_SHIFT = 30
TASK_TIMEOUT = 6 * 3600
"""A report or export of the 200 000-person data set takes many minutes; allow hours."""
BARE_READS = 2
"""The bare read is timed twice and the faster kept (the report once: a conservative ratio)."""

BARE_READ_SQL = """
SELECT a.response_id, a.item_id, a.value, a.value_num
FROM answers a
JOIN responses r ON r.id = a.response_id
JOIN enrolments e ON e.id = r.enrolment_id
WHERE e.pilot_id = :pilot AND r.status = 'submitted'
"""


def size_label(people: int) -> str:
    """``10000`` → ``10k``; sizes that are not whole thousands stay as they are."""
    return f"{people // 1000}k" if people % 1000 == 0 else str(people)


def scaling(seconds: dict[int, float]) -> dict[str, float | None]:
    """How time grows with people: the marginal slope per 10 000 people between the smallest
    and the largest size, and the time per 10 000 at the largest divided by that at the
    smallest (≤ 1: flat or falling)."""
    if len(seconds) < 2:
        return {"slope_s_per_10k": None, "scaling_large_vs_small": None}
    small, large = min(seconds), max(seconds)
    slope = (seconds[large] - seconds[small]) / ((large - small) / 10_000)
    per_small = seconds[small] / (small / 10_000)
    per_large = seconds[large] / (large / 10_000)
    return {
        "slope_s_per_10k": round(slope, 3),
        "scaling_large_vs_small": round(per_large / per_small, 3) if per_small > 0 else None,
    }


def _warm_up() -> None:
    """Import and initialise what the first report would otherwise pay for (matplotlib's
    fonts, WeasyPrint, statsmodels), so the timings are of the work itself."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    import statsmodels.api  # noqa: F401
    import weasyprint  # noqa: F401

    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    axes.set_title("warm-up")
    figure.savefig(io.BytesIO(), format="svg")
    plt.close(figure)


# -- child tasks -----------------------------------------------------------------------------


def _measure_report(pdf: bool, report: bool) -> dict[str, Any]:
    """Report (and PDF) timings of both pilots on the database of the current app context."""
    from datetime import UTC, date, datetime

    import pandas as pd
    from flask_babel import force_locale
    from sqlalchemy import func, select, text

    from vaikuttavuus import queries
    from vaikuttavuus.domain.periods import default_period, release_date, released_periods
    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Enrolment
    from vaikuttavuus.pdf import render_pdf
    from vaikuttavuus.queries import pilot_by_code
    from vaikuttavuus.services.management_report import management_context, released_cohort

    result: dict[str, Any] = {"pilots": {}}
    peak = 0.0
    for code in PILOTS:
        pilot = pilot_by_code(db.session, code)
        assert pilot is not None, code
        people = db.session.scalar(
            select(func.count()).select_from(Enrolment).where(Enrolment.pilot_id == pilot.id)
        )
        gc.collect()
        memory.reset_peak()
        release = release_date(date.today())
        first = queries.first_index_date(db.session, [pilot.id])
        period = default_period(released_periods(first, release))
        assert period is not None, code
        started, started_cpu = time.perf_counter(), time.process_time()
        analysis = released_cohort(db.session, pilot, period, release)
        with force_locale(LANGUAGE):
            context = management_context(analysis, LANGUAGE)
        compute = time.perf_counter() - started
        compute_cpu = time.process_time() - started_cpu
        peak = max(peak, memory.peak_rss_mb())
        figures: dict[str, Any] = {
            "people": people,
            "compute_seconds": round(compute, 3),
            "compute_cpu_seconds": round(compute_cpu, 3),
        }
        if pdf:
            started = time.perf_counter()
            document = render_pdf(
                "management.html",
                LANGUAGE,
                pilots=[context],
                period=period,
                generated_at=datetime.now(UTC),
                demo_data=True,
            )
            figures["render_seconds"] = round(time.perf_counter() - started, 3)
            figures["pdf_bytes"] = len(document)
        del analysis, context
        gc.collect()
        if report:
            reads = []
            for _ in range(BARE_READS):
                started = time.perf_counter()
                answers = pd.read_sql(
                    text(BARE_READ_SQL), db.session.connection(), params={"pilot": pilot.id}
                )
                reads.append(time.perf_counter() - started)
                figures["answers"] = len(answers)
                del answers
            figures["bare_read_seconds"] = round(min(reads), 3)
        db.session.rollback()
        result["pilots"][code] = figures
    result["peak_rss_mb"] = round(peak, 1)
    return result


@task("report", needs_app=False)
def report_task(databases: list[list[Any]], pdf_people: int | None, report: bool) -> dict[str, Any]:
    """Report timings for each ``[people, url]`` database (the PDF too where people ==
    ``pdf_people``), in this one process."""
    from bench.tasks import app_for

    _warm_up()
    measured: dict[str, Any] = {}
    for people, url in databases:
        with app_for(url):
            measured[str(people)] = _measure_report(pdf=people == pdf_people, report=report)
    measured["max_rss_mb"] = round(memory.max_rss_mb(), 1)
    return measured


def _export(folder: Path, xlsx: bool) -> dict[str, Any]:
    """Long CSV (and wide XLSX) of both pilots on the current database, timed, with the peak
    memory of each export counted from just before it."""
    from vaikuttavuus.extensions import db
    from vaikuttavuus.queries import pilot_by_code
    from vaikuttavuus.services import exports

    options = exports.ExportOptions(date_shift_days=EXPORT_DATE_SHIFT)
    result: dict[str, Any] = {"csv_seconds": 0.0, "csv_rows": 0, "csv_peak_rss_mb": 0.0}
    result |= {"csv_bytes": 0, "xlsx": xlsx}
    if xlsx:
        result |= {"xlsx_seconds": 0.0, "xlsx_rows": 0, "xlsx_peak_rss_mb": 0.0, "xlsx_bytes": 0}
    for code in PILOTS:
        pilot = pilot_by_code(db.session, code)
        assert pilot is not None, code
        out = folder / f"{code}-long.csv"
        gc.collect()
        memory.reset_peak()
        started = time.perf_counter()
        rows = exports.write_csv(
            out, exports.long_header(), exports.long_rows(db.session, pilot, options)
        )
        result["csv_seconds"] += time.perf_counter() - started
        result["csv_rows"] += rows
        result["csv_peak_rss_mb"] = max(result["csv_peak_rss_mb"], memory.peak_rss_mb())
        result["csv_bytes"] += out.stat().st_size
        out.unlink()
        if xlsx:
            out = folder / f"{code}-wide.xlsx"
            gc.collect()
            memory.reset_peak()
            started = time.perf_counter()
            layout = exports.wide_layout(db.session, pilot)
            counts = exports.write_xlsx(
                out,
                [("data", layout.header, exports.wide_rows(db.session, pilot, layout, options))],
            )
            result["xlsx_seconds"] += time.perf_counter() - started
            result["xlsx_rows"] += counts["data"]
            result["xlsx_peak_rss_mb"] = max(result["xlsx_peak_rss_mb"], memory.peak_rss_mb())
            result["xlsx_bytes"] += out.stat().st_size
            out.unlink()
        db.session.rollback()
    for key in ("csv_seconds", "xlsx_seconds", "csv_peak_rss_mb", "xlsx_peak_rss_mb"):
        if key in result:
            result[key] = round(result[key], 3)
    return result


@task("export", needs_app=False)
def export_task(databases: list[list[Any]], xlsx_people: list[int]) -> dict[str, Any]:
    """Exports of each ``[people, url]`` database (the XLSX where people is in
    ``xlsx_people``), in this one process."""
    from bench.tasks import app_for

    measured: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        for people, url in databases:
            with app_for(url):
                measured[str(people)] = _export(Path(folder), xlsx=people in xlsx_people)
    return measured


# -- the parent side -----------------------------------------------------------------------


def report_figures(per_size: dict[int, dict[str, Any]]) -> Figures:
    """``report`` figures from the report task's results per data-set size."""
    figures: Figures = {"sizes": sorted(per_size)}
    seconds: dict[int, float] = {}
    for people, measured in sorted(per_size.items()):
        label = size_label(people)
        pilots = measured["pilots"].values()
        compute = sum(p["compute_seconds"] for p in pilots)
        bare = sum(p["bare_read_seconds"] for p in pilots)
        seconds[people] = compute
        figures[f"seconds_{label}"] = round(compute, 2)
        figures[f"cpu_seconds_{label}"] = round(
            sum(p.get("compute_cpu_seconds", 0.0) for p in pilots), 2
        )
        figures[f"bare_read_seconds_{label}"] = round(bare, 3)
        figures[f"ratio_vs_bare_read_{label}"] = round(compute / bare, 2) if bare else None
        figures[f"peak_rss_mb_{label}"] = measured["peak_rss_mb"]
        figures[f"answers_{label}"] = sum(p["answers"] for p in pilots)
    largest = max(per_size)
    label = size_label(largest)
    figures.update(
        {
            "people": largest,
            "seconds": figures[f"seconds_{label}"],
            "bare_read_seconds": figures[f"bare_read_seconds_{label}"],
            "ratio_vs_bare_read": figures[f"ratio_vs_bare_read_{label}"],
            "peak_rss_mb": max(m["peak_rss_mb"] for m in per_size.values()),
        }
    )
    for code, pilot in per_size[largest]["pilots"].items():
        key = code.replace("-", "_")
        figures[f"seconds_{key}"] = pilot["compute_seconds"]
        figures[f"ratio_vs_bare_read_{key}"] = (
            round(pilot["compute_seconds"] / pilot["bare_read_seconds"], 2)
            if pilot["bare_read_seconds"]
            else None
        )
    figures.update(scaling(seconds))
    return figures


def pdf_figures(people: int, measured: dict[str, Any], backend: str) -> Figures:
    """``pdf`` figures: end to end (compute + render) per pilot; the slower one is ``seconds``."""
    figures: Figures = {"people": people, "backend": backend}
    slowest = None
    for code, pilot in measured["pilots"].items():
        key = code.replace("-", "_")
        total = pilot["compute_seconds"] + pilot["render_seconds"]
        figures[f"seconds_{key}"] = round(total, 2)
        figures[f"render_seconds_{key}"] = pilot["render_seconds"]
        figures[f"bytes_{key}"] = pilot["pdf_bytes"]
        if slowest is None or total > slowest[0]:
            slowest = (total, pilot)
    assert slowest is not None
    figures["seconds"] = round(slowest[0], 2)
    figures["compute_seconds"] = slowest[1]["compute_seconds"]
    figures["render_seconds"] = slowest[1]["render_seconds"]
    return figures


def export_figures(per_size: dict[int, dict[str, Any]]) -> Figures:
    """``export`` figures per size: the long CSV (every answer) at each size sets the time,
    its scaling and the growth of memory; the wide XLSX is reported where it was measured."""
    figures: Figures = {"sizes": sorted(per_size), "what": "long CSV of both pilots"}
    seconds: dict[int, float] = {}
    peaks: dict[int, float] = {}
    for people, measured in sorted(per_size.items()):
        label = size_label(people)
        seconds[people] = measured["csv_seconds"]
        peaks[people] = measured["csv_peak_rss_mb"]
        figures[f"seconds_{label}"] = round(measured["csv_seconds"], 2)
        figures[f"rows_{label}"] = measured["csv_rows"]
        figures[f"csv_mb_{label}"] = round(measured["csv_bytes"] / 2**20, 1)
        figures[f"peak_rss_mb_{label}"] = round(measured["csv_peak_rss_mb"], 1)
        if measured.get("xlsx"):
            figures[f"xlsx_seconds_{label}"] = round(measured["xlsx_seconds"], 2)
            figures[f"xlsx_rows_{label}"] = measured["xlsx_rows"]
            figures[f"xlsx_peak_rss_mb_{label}"] = round(measured["xlsx_peak_rss_mb"], 1)
    largest, smallest = max(per_size), min(per_size)
    label = size_label(largest)
    figures.update(
        {
            "people": largest,
            "seconds": figures[f"seconds_{label}"],
            "rows": figures[f"rows_{label}"],
            "peak_rss_mb": figures[f"peak_rss_mb_{label}"],
            "rss_growth_mb": round(peaks[largest] - peaks[smallest], 1),
            "xlsx_seconds": figures.get(f"xlsx_seconds_{label}"),
            "streamed": True,
        }
    )
    figures.update(scaling(seconds))
    return figures


def _run_per_size(
    context: Context,
    backend: str,
    task_name: str,
    sizes: list[int],
    progress: Callable[[dict[int, dict[str, Any]]], None] | None = None,
    **arguments: Any,
) -> dict[int, dict[str, Any]]:
    """Run ``task_name`` on the data sets of ``sizes``: in one child process (quick) or one
    child per size (full run: each peak memory in a fresh process). ``progress`` gets the
    results so far after each child (to keep them if the run stops)."""
    workspace = context.workspace
    workspace.ensure_datasets(backend, sizes)
    databases = [[people, workspace.dataset(backend, people)] for people in sizes]
    groups = [databases] if context.sizes.one_process else [[d] for d in databases]
    measured: dict[int, dict[str, Any]] = {}
    for group in groups:
        shown = ", ".join(str(people) for people, _url in group)
        context.say(f"{backend}: {task_name}, {shown} people")
        result = workspace.run_task(task_name, databases=group, timeout=TASK_TIMEOUT, **arguments)
        measured.update({int(k): v for k, v in result.items() if k.isdigit()})
        if progress is not None and len(measured) < len(sizes):
            progress(measured)
    return measured


def run_report(context: Context, backend: str | None, wanted: frozenset[str]) -> dict[str, Figures]:
    assert backend is not None
    largest = context.sizes.largest
    with_pdf = "pdf" in wanted and backend == context.primary_backend
    sizes = list(context.sizes.people) if "report" in wanted else [largest]
    per_size = _run_per_size(
        context,
        backend,
        "report",
        sizes,
        progress=(
            (lambda done: context.checkpoint("report", backend, report_figures(done)))
            if "report" in wanted
            else None
        ),
        pdf_people=largest if with_pdf else None,
        report="report" in wanted,
    )
    out: dict[str, Figures] = {}
    if "report" in wanted:
        out["report"] = report_figures(per_size)
    if with_pdf:
        out["pdf"] = pdf_figures(largest, per_size[largest], backend)
    return out


def run_export(
    context: Context, backend: str | None, _wanted: frozenset[str]
) -> dict[str, Figures]:
    assert backend is not None
    sizes = list(context.sizes.people)
    xlsx = sizes if context.sizes.xlsx_at_every_size else [context.sizes.largest]
    per_size = _run_per_size(
        context,
        backend,
        "export",
        sizes,
        progress=lambda done: context.checkpoint("export", backend, export_figures(done)),
        xlsx_people=xlsx,
    )
    return {"export": export_figures(per_size)}


register(
    Scenario(
        names=("report", "pdf"),
        run=run_report,
        per_backend=True,
        description="management report figures vs a bare read; the management PDF",
    )
)
register(
    Scenario(
        names=("export",),
        run=run_export,
        per_backend=True,
        description="pseudonymised long CSV and wide XLSX, time and memory per size",
    )
)
