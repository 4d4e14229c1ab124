"""Mixed traffic against the real server: ``clinician_page`` and ``soak``.

Both run ``vaikuttavuus serve`` (gunicorn, 2 workers × 4 threads) on a copy of the synthetic
data set of :data:`PEOPLE` people (40 % BPH, 60 % older adults) and drive it from this process
with threads, each keeping one HTTP connection (``requests``):

* **patients** — each thread takes new personal links (BPH baseline, enrolled for the run) and
  walks them as a browser does: every questionnaire page read (GET) and sent (POST, answers
  chosen from the form), the review page, the submit; a pause between requests;
* **clinicians** — logged in; open patient pages (``/clinician/<pilot>/<pseudonym>``) of random
  patients of both pilots, now and then the patient list;
* **pilot leads** — logged in; read every section of the cohort page and the CSVs behind them,
  in turn, for both pilots. As in production, a ``vaikuttavuus worker`` next to the server
  builds the analysis snapshots the pages read (its own job queue per scenario); a page asked
  for before its snapshot exists answers "being computed" (counted:
  ``pilot_lead_waiting_pages``).

``clinician_page``: the clinician's patient page alone (8 connections, as ``page_get``) against
bare Flask's ``GET /hello`` served the same way → ``per_s``, ``ratio_vs_bare``, ``p95_ms``;
then the same page at a clinician's pace **under the soak load** (patients and a pilot lead as
above) → ``p95_under_load_ms`` (goal < 300 ms).

``soak``: the mixed traffic for ``--soak-minutes`` (default 60; ``scripts/bench --only soak``,
not part of other runs): per kind the requests, errors and latency percentiles, per minute the
same, the RSS of each gunicorn worker every few seconds (its growth fitted after a warm-up:
MB per 10 minutes), the SQLite write-ahead log's size (PostgreSQL: ``pg_wal``), the machine's
load average. An error is any answer other than the expected one (5xx, 4xx, a wrong redirect)
or a failed connection.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.load import Request, run_load, status_is
from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.servers import app_server, hello_server, worker_process
from bench.tasks import task

PEOPLE = 2_000
"""The data set of the clinician goal ("p95 < 300 ms at 2,000 people under the soak load")."""
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FORM_TOKEN = re.compile(r'name="form_token"[^>]*value="([^"]+)"')
SECTIONS = ("overview", "quality", "outcomes", "costs", "cea", "funnel", "services")
TABLES = ("response_rates", "data_quality", "outcomes", "costs", "late_answers", "funnel_limits")
SAMPLE_SECONDS = 5.0


@dataclass(frozen=True)
class Mix:
    """Threads and pauses (seconds between one thread's requests) of each kind of user."""

    patients: int = 6
    patient_pause: float = 0.3
    clinicians: int = 2
    clinician_pause: float = 0.5
    leads: int = 1
    lead_pause: float = 2.0


SOAK_MIX = Mix()


# -- child task: users, links and patients to look at ---------------------------------------


@task("prepare_soak")
def prepare_soak_task(links: int, seed: int = 7) -> dict[str, Any]:
    """A clinician and a pilot lead (both pilots; random passwords), ``links`` BPH patients
    enrolled with a baseline link each (nothing answered), and pseudonyms of the data set's
    patients of both pilots."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Enrolment, Invitation, Person, Pilot, TimePoint
    from vaikuttavuus.services import patient_flow
    from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol
    from vaikuttavuus.services.users import create_user

    session = db.session
    users = {}
    for role in ("clinician", "pilot_lead"):
        password = "Bench-" + secrets.token_urlsafe(12) + "a9Z"
        username = f"bench_{role}"
        create_user(
            session,
            username=username,
            password=password,
            role=role,
            pilot_codes=("bph", "older-adults"),
        )
        users[role] = [username, password]
    baseline = select(TimePoint.id).where(TimePoint.code == "baseline")
    index_date = date.today() + timedelta(days=10)
    tokens = []
    for number in range(links):
        person = add_person(
            session,
            NewPerson(first_name="Kuorma", last_name=f"Soak{number}", birth_year=1950, sex="male"),
            source="bench",
        )
        enrolment = enrol(
            session, person, pilot_code="bph", arm_code="operating_room", index_date=index_date
        )
        invitation = session.scalar(
            select(Invitation).where(
                Invitation.enrolment_id == enrolment.id, Invitation.time_point_id.in_(baseline)
            )
        )
        assert invitation is not None
        tokens.append(patient_flow.issue_token(session, invitation))
        if number % 200 == 199:
            session.commit()
    session.commit()
    rng = random.Random(seed)
    rows = session.execute(
        select(Pilot.code, Person.pseudonym)
        .join(Enrolment, Enrolment.pilot_id == Pilot.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Person.erased_at.is_(None), Person.source != "bench")
    ).all()
    patients = [list(row) for row in rng.sample(rows, min(len(rows), 600))]
    return {"users": users, "links": tokens, "patients": patients}


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Recorder:
    """Every request's kind, time, latency and outcome, shared by the traffic threads."""

    started: float = field(default_factory=time.monotonic)
    rows: list[tuple[str, float, float, bool]] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, ok: bool, what: str = "") -> None:
        with self.lock:
            self.rows.append((kind, time.monotonic() - self.started, seconds, ok))
            if not ok:
                self.problems[f"{kind}: {what}"[:120]] += 1

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        with self.lock:
            rows = [row for row in self.rows if row[1] >= since]
        span = max((rows[-1][1] - rows[0][1]) if rows else 0.0, 1e-9)
        out: dict[str, Any] = {}
        for kind in sorted({row[0] for row in rows}):
            mine = [row for row in rows if row[0] == kind]
            latencies = np.asarray([row[2] for row in mine]) * 1000.0
            errors = sum(1 for row in mine if not row[3])
            out[kind] = {
                "requests": len(mine),
                "errors": errors,
                "per_s": round(len(mine) / span, 2),
                **{f"p{q}_ms": round(float(np.percentile(latencies, q)), 1) for q in (50, 95, 99)},
            }
        return out

    def per_minute(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = list(self.rows)
        minutes: dict[int, list[tuple[str, float, float, bool]]] = defaultdict(list)
        for row in rows:
            minutes[int(row[1] // 60)].append(row)
        series = []
        for minute in sorted(minutes):
            mine = minutes[minute]
            entry: dict[str, Any] = {
                "minute": minute,
                "requests": len(mine),
                "errors": sum(1 for r in mine if not r[3]),
            }
            for kind in sorted({r[0] for r in mine}):
                values = [r[2] * 1000.0 for r in mine if r[0] == kind]
                entry[f"{kind}_p95_ms"] = round(float(np.percentile(values, 95)), 1)
            series.append(entry)
        return series


def _workers(master: int) -> list[int]:
    """The gunicorn worker processes (children of the master)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(entry.name))
    return sorted(children)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _folder_size(path: Path) -> int:
    try:
        return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())
    except OSError:
        return 0


@dataclass
class Sampler:
    """Worker RSS and write-ahead-log size every :data:`SAMPLE_SECONDS`."""

    master: int
    wal: Callable[[], int]
    started: float = field(default_factory=time.monotonic)
    samples: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            sample: dict[str, Any] = {"t": round(time.monotonic() - self.started, 1)}
            sample["rss_mb"] = {
                str(pid): round(rss, 1)
                for pid in _workers(self.master)
                if (rss := _rss_mb(pid)) is not None
            }
            sample["wal_mb"] = round(self.wal() / 1e6, 2)
            sample["load_1m"] = round(os.getloadavg()[0], 2)
            self.samples.append(sample)
            self.stop.wait(SAMPLE_SECONDS)

    def memory_figures(self, warm_up: float) -> dict[str, Any]:
        """Per worker: RSS at the start, after the warm-up, at the end, and the growth fitted
        over the time after the warm-up (MB per 10 minutes); the largest of the workers."""
        per_worker: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for sample in self.samples:
            for pid, rss in sample["rss_mb"].items():
                per_worker[pid].append((sample["t"], rss))
        workers = {}
        for pid, points in per_worker.items():
            later = [(t, rss) for t, rss in points if t >= warm_up]
            slope = None
            if len(later) >= 3:
                t_values = np.asarray([t for t, _ in later])
                rss_values = np.asarray([rss for _, rss in later])
                slope = float(np.polyfit(t_values, rss_values, 1)[0]) * 600.0
            workers[pid] = {
                "rss_start_mb": points[0][1],
                "rss_after_warm_up_mb": later[0][1] if later else None,
                "rss_end_mb": points[-1][1],
                "growth_mb_per_10min": None if slope is None else round(slope, 2),
            }
        slopes = [w["growth_mb_per_10min"] for w in workers.values()]
        known = [s for s in slopes if s is not None]
        return {
            "workers": workers,
            "rss_growth_mb_per_10min": round(max(known), 2) if known else None,
            "rss_end_mb": max((w["rss_end_mb"] for w in workers.values()), default=None),
        }


# -- the traffic -----------------------------------------------------------------------------


def _login(base: str, username: str, password: str) -> Any:
    import requests

    session = requests.Session()
    page = session.get(base + "/auth/login", timeout=60)
    match = CSRF.search(page.text)
    if match is None:
        raise RuntimeError(f"no login form ({page.status_code})")
    answer = session.post(
        base + "/auth/login",
        data={"username": username, "password": password, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=60,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login of {username} failed ({answer.status_code})")
    return session


class Traffic:
    """The threads of one mixed load, stopped together."""

    def __init__(self, base: str, recorder: Recorder, prepared: dict[str, Any]) -> None:
        self.base = base
        self.recorder = recorder
        self.links: Iterator[str] = iter(prepared["links"])
        self.links_lock = threading.Lock()
        self.users = prepared["users"]
        self.patients = prepared["patients"]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.submitted = 0
        self.lead_waiting = 0
        """Cohort pages answered with "being computed" (no snapshot yet; the worker builds it)."""

    def start(self, mix: Mix, *, clinicians: bool = True) -> None:
        plan: list[tuple[Callable[[int, float], None], int, float]] = [
            (self._patient, mix.patients, mix.patient_pause),
            (self._lead, mix.leads, mix.lead_pause),
        ]
        if clinicians:
            plan.append((self._clinician, mix.clinicians, mix.clinician_pause))
        for target, count, pause in plan:
            for number in range(count):
                thread = threading.Thread(target=target, args=(number, pause), daemon=True)
                thread.start()
                self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=300)

    def _request(
        self,
        session: Any,
        kind: str,
        method: str,
        path: str,
        expect: Callable[[Any], bool],
        **options: Any,
    ) -> Any:
        started = time.perf_counter()
        try:
            answer = session.request(
                method, self.base + path, allow_redirects=False, timeout=120, **options
            )
        except Exception as error:  # every failure counts as an error
            self.recorder.add(kind, time.perf_counter() - started, False, type(error).__name__)
            return None
        ok = expect(answer)
        self.recorder.add(kind, time.perf_counter() - started, ok, f"{method} {answer.status_code}")
        return answer

    def _next_link(self) -> str | None:
        with self.links_lock:
            return next(self.links, None)

    def _patient(self, number: int, pause: float) -> None:
        import requests

        from tests.reliability.load import Client
        from tests.support.crawl import parse_page

        rng = random.Random(number)
        session = requests.Session()
        while not self.stop.is_set() and (token := self._next_link()) is not None:
            page_number = 1
            while not self.stop.is_set():
                page = self._request(
                    session,
                    "patient",
                    "GET",
                    f"/r/{token}/{page_number}",
                    lambda a: a.status_code in (200, 302),
                )
                if page is None or page.status_code != 200:
                    break
                forms = [f for f in parse_page(page.url, page.text).forms if f.method == "post"]
                match = FORM_TOKEN.search(page.text)
                if not forms or match is None:
                    break
                data = {"form_token": match.group(1), **Client._choose(forms[0], rng)}
                data["direction"] = "review" if 'value="review"' in page.text else "next"
                self.stop.wait(pause)
                sent = self._request(
                    session,
                    "patient",
                    "POST",
                    f"/r/{token}/{page_number}",
                    lambda a: a.status_code == 302,
                    data=data,
                )
                self.stop.wait(pause)
                if sent is None or data["direction"] == "review":
                    break
                page_number += 1
            if self.stop.is_set():
                return
            review = self._request(
                session, "patient", "GET", f"/r/{token}/review", lambda a: a.status_code == 200
            )
            match = FORM_TOKEN.search(review.text) if review is not None else None
            if match is None:
                continue
            self.stop.wait(pause)
            done = self._request(
                session,
                "submit",
                "POST",
                f"/r/{token}/submit",
                lambda a: a.status_code == 302 and "/thanks" in a.headers.get("Location", ""),
                data={"form_token": match.group(1)},
            )
            if done is not None and done.status_code == 302:
                with self.links_lock:
                    self.submitted += 1
            self.stop.wait(pause)

    def _clinician(self, number: int, pause: float) -> None:
        rng = random.Random(100 + number)
        session = _login(self.base, *self.users["clinician"])
        while not self.stop.is_set():
            pilot, pseudonym = rng.choice(self.patients)
            if rng.random() < 0.1:
                self._request(
                    session,
                    "clinician_list",
                    "GET",
                    f"/clinician/{pilot}/",
                    lambda a: a.status_code == 200,
                )
            else:
                self._request(
                    session,
                    "clinician",
                    "GET",
                    f"/clinician/{pilot}/{pseudonym}",
                    lambda a: a.status_code == 200,
                )
            self.stop.wait(pause)

    def _lead(self, number: int, pause: float) -> None:
        session = _login(self.base, *self.users["pilot_lead"])
        paths = [
            f"/pilot/{p}/?section={s}"
            for p in ("bph", "older-adults")
            for s in SECTIONS
            if not (p == "bph" and s == "services") and not (p != "bph" and s == "cea")
        ]
        paths += [f"/pilot/{p}/tables/{t}.csv" for p in ("bph", "older-adults") for t in TABLES]
        position = number * 7
        while not self.stop.is_set():
            path = paths[position % len(paths)]
            answer = self._request(
                session, "pilot_lead", "GET", path, lambda a: a.status_code == 200
            )
            if answer is not None and 'http-equiv="refresh"' in answer.text:
                self.lead_waiting += 1
            position += 1
            self.stop.wait(pause)


# -- scenarios -----------------------------------------------------------------------------


def _wal_reader(context: Context, backend: str, url: str) -> Callable[[], int]:
    if backend == "sqlite":
        wal = Path(url.removeprefix("sqlite:///") + "-wal")
        return lambda: wal.stat().st_size if wal.exists() else 0
    server = context.workspace.backend(backend).server
    folder = Path(server.data) / "pg_wal"
    return lambda: _folder_size(folder)


def _prepare(context: Context, backend: str, links: int) -> tuple[str, dict[str, Any]]:
    workspace = context.workspace
    url = workspace.copy(backend, workspace.dataset(backend, PEOPLE), f"soak_{backend}")
    context.say(f"{backend}: preparing users, {links} personal links and patients to view")
    prepared = workspace.run_task("prepare_soak", url, links=links, timeout=3600)
    return url, prepared


def _with_job_queue(workspace: Any, url: str, name: str) -> dict[str, str]:
    """The server's and its worker's environment, with a job queue of their own (a file in
    the workspace), so that no job of another scenario reaches this one's worker."""
    env = workspace.env(url)
    env["JOB_QUEUE_URL"] = f"sqlite:///{workspace.root / f'jobs-{name}.sqlite3'}"
    return env


def run_clinician_page(
    context: Context, backend: str | None, wanted: frozenset[str]
) -> dict[str, Figures]:
    assert backend is not None
    sizes = context.sizes.http
    workspace = context.workspace
    under_load_seconds = 45.0 if context.quick else 120.0
    url, prepared = _prepare(context, backend, links=400 if context.quick else 1_000)
    common = {"workers": sizes.workers, "threads": sizes.threads}
    figures: Figures = {**common, "backend": backend, "data_set_people": PEOPLE}
    env = _with_job_queue(workspace, url, f"clinician-{backend}")
    try:
        with (
            hello_server(
                workspace.env(), workspace.log_path(f"hello-c-{backend}"), **common
            ) as bare,
            app_server(env, workspace.log_path(f"serve-c-{backend}"), **common) as app,
        ):
            session = _login(f"http://{app.host}:{app.port}", *prepared["users"]["clinician"])
            cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
            pages = [
                Request("GET", f"/clinician/{pilot}/{pseudonym}", headers=(("Cookie", cookie),))
                for pilot, pseudonym in prepared["patients"]
            ]
            load = {
                "concurrency": sizes.concurrency,
                "max_seconds": sizes.max_seconds,
                "check": status_is(200),
            }
            context.say(f"{backend}: clinician page alone vs bare Flask")
            run_load(bare.host, bare.port, [Request("GET", "/hello")], max_requests=500, **load)
            run_load(app.host, app.port, pages, max_requests=len(pages) // 4, **load)  # warm-up
            bare_run = run_load(
                bare.host,
                bare.port,
                [Request("GET", "/hello")],
                max_requests=sizes.get_requests,
                **load,
            )
            alone = run_load(app.host, app.port, pages, max_requests=sizes.get_requests, **load)
            figures.update(alone.figures())
            figures.update(bare_run.figures("bare_"))
            figures["ratio_vs_bare"] = (
                round(alone.per_s / bare_run.per_s, 3) if bare_run.per_s else None
            )
            context.say(
                f"{backend}: clinician page under the soak load ({under_load_seconds:.0f} s)"
            )
            recorder = Recorder()
            traffic = Traffic(f"http://{app.host}:{app.port}", recorder, prepared)
            with worker_process(env, workspace.log_path(f"worker-c-{backend}")):
                traffic.start(SOAK_MIX)
                traffic.stop.wait(under_load_seconds)
                traffic.finish()
            summary = recorder.summary(since=10.0)
            clinician = summary.get("clinician", {})
            figures["p95_under_load_ms"] = clinician.get("p95_ms")
            figures["p50_under_load_ms"] = clinician.get("p50_ms")
            figures["under_load"] = summary
            figures["under_load_errors"] = sum(k["errors"] for k in summary.values())
            figures["under_load_seconds"] = under_load_seconds
            figures["pilot_lead_waiting_pages"] = traffic.lead_waiting
            figures["problems"] = dict(recorder.problems)
            figures["load_average"] = round(os.getloadavg()[0], 2)
    finally:
        workspace.drop(backend, url)
    return {"clinician_page": figures}


def run_soak(context: Context, backend: str | None, wanted: frozenset[str]) -> dict[str, Figures]:
    assert backend is not None
    minutes = float(context.options.get("soak_minutes", 60))
    sizes = context.sizes.http
    workspace = context.workspace
    links = int(120 * minutes) + 200  # a patient finishes in about 30 s per thread
    url, prepared = _prepare(context, backend, links=links)
    common = {"workers": sizes.workers, "threads": sizes.threads}
    figures: Figures = {
        **common,
        "backend": backend,
        "data_set_people": PEOPLE,
        "minutes": minutes,
        "mix": SOAK_MIX.__dict__,
    }
    env = _with_job_queue(workspace, url, f"soak-{backend}")
    try:
        with (
            app_server(env, workspace.log_path(f"serve-soak-{backend}"), **common) as app,
            worker_process(env, workspace.log_path(f"worker-soak-{backend}")),
        ):
            recorder = Recorder()
            sampler = Sampler(app.process.pid, _wal_reader(context, backend, url))
            sampling = threading.Thread(target=sampler.run, daemon=True)
            sampling.start()
            traffic = Traffic(f"http://{app.host}:{app.port}", recorder, prepared)
            figures["load_average_start"] = round(os.getloadavg()[0], 2)
            traffic.start(SOAK_MIX)
            deadline = time.monotonic() + minutes * 60
            while time.monotonic() < deadline and not traffic.stop.is_set():
                remaining = deadline - time.monotonic()
                traffic.stop.wait(min(60.0, max(remaining, 0.0)))
                done = recorder.summary()
                total = sum(k["requests"] for k in done.values())
                errors = sum(k["errors"] for k in done.values())
                elapsed = (time.monotonic() - recorder.started) / 60
                context.say(f"{backend}: soak {elapsed:.1f} min, {total} requests, {errors} errors")
                context.checkpoint("soak", backend, {**figures, "partial": True, "so_far": done})
            traffic.finish()
            sampler.stop.set()
            sampling.join()
            summary = recorder.summary()
            total = sum(k["requests"] for k in summary.values())
            errors = sum(k["errors"] for k in summary.values())
            warm_up = min(120.0, minutes * 60 * 0.2)
            figures.update(
                {
                    "requests": total,
                    "errors": errors,
                    "error_rate": round(errors / total, 5) if total else None,
                    "per_s": round(total / (minutes * 60), 2),
                    "submits": traffic.submitted,
                    "pilot_lead_waiting_pages": traffic.lead_waiting,
                    "kinds": summary,
                    "per_minute": recorder.per_minute(),
                    "problems": dict(recorder.problems),
                    **sampler.memory_figures(warm_up),
                    "warm_up_seconds": warm_up,
                    "wal_max_mb": max((s["wal_mb"] for s in sampler.samples), default=None),
                    "wal_end_mb": sampler.samples[-1]["wal_mb"] if sampler.samples else None,
                    "load_average_mean": round(
                        statistics.mean(s["load_1m"] for s in sampler.samples), 2
                    )
                    if sampler.samples
                    else None,
                    "samples": sampler.samples,
                }
            )
            for kind, values in summary.items():
                figures[f"{kind}_p95_ms"] = values["p95_ms"]
    finally:
        workspace.drop(backend, url)
    return {"soak": figures}


register(
    Scenario(
        names=("clinician_page",),
        run=run_clinician_page,
        per_backend=True,
        description="clinician's patient page (2 000 people) vs bare Flask; under the soak load",
    )
)
register(
    Scenario(
        names=("soak",),
        run=run_soak,
        per_backend=True,
        description="mixed patient, clinician and pilot-lead traffic for --soak-minutes (60)",
        in_quick=False,
        on_request_only=True,
    )
)
