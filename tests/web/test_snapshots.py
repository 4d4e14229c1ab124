# ruff: noqa: F811  (the cohort_app fixture is imported from tests.support)
"""Analysis snapshots: the cohort page is served from a stored analysis keyed by the data
version; newer data show the stored figures with a note while a worker refreshes them; a
build is claimed (never two at once), taken over when its builder died, stored whole or not
at all, and a payload is unpickled only when its signature checks.

The tests run the queue in immediate mode (``JOB_QUEUE_URL = "immediate"``) unless they swap
in a queue that only stores the messages, to look at the page before the worker has run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from tests import conftest
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.web.test_cohort_pages import user_client
from vaikuttavuus import jobs
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AnalysisSnapshot, Pilot
from vaikuttavuus.services import snapshots
from vaikuttavuus.services.analytics import Filters

NONCE = re.compile(
    r'nonce="[^"]*"|name="csrf_token"[^>]*|<meta name="csrf-token"[^>]*>'
    r"|data:image/svg\+xml;base64,[^\"]+"  # charts: matplotlib's element ids are random
)
VERSION = re.compile(r'class="note data-version">([^<]*)<')
TAKEN_AT = re.compile(r"\b\d{1,2}\.\d{1,2}\.\d{4} \d{2}:\d{2}\b")
"""A day and minute as the pages write them (when a snapshot was taken, a PDF made)."""
PILOTS = ("bph", "older-adults")


@pytest.fixture
def lead(cohort_app: Flask) -> Iterator[FlaskClient]:
    yield user_client(cohort_app, "vastaava", "pilot_lead")


def pilot(code: str) -> Pilot:
    found = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert found is not None
    return found


def ready_rows(code: str) -> list[AnalysisSnapshot]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AnalysisSnapshot).where(
                AnalysisSnapshot.pilot_id == pilot(code).id, AnalysisSnapshot.status == "ready"
            )
        )
    )


def html(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def add_person(code: str = "bph", arm: str = "operating_room") -> None:
    from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol

    person = add_person(
        db.session,
        NewPerson(first_name="Uusi", last_name="Tulija", birth_year=1950, sex="male"),
    )
    enrol(db.session, person, pilot_code=code, arm_code=arm, index_date=date.today())
    db.session.commit()


def stored_only_queue(app: Flask) -> jobs.JobQueue:
    """A queue that keeps the messages until the test runs them (a worker that has not
    got to them yet)."""
    from huey import MemoryHuey

    huey = MemoryHuey("test", immediate=False, results=False)
    queue = jobs.JobQueue(huey, jobs._register_tasks(huey, app), "memory")
    app.extensions[jobs.EXTENSION] = queue
    return queue


def run_pending(queue: jobs.JobQueue) -> int:
    done = 0
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
        done += 1
    return done


def test_a_page_is_served_from_its_snapshot_without_computing(
    lead: FlaskClient,
    cohort_app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "/pilot/bph/?section=outcomes"
    first = html(lead, url)
    [row] = ready_rows("bph")
    assert row.payload and row.signature and row.data_taken_at is not None
    assert row.params["view"] == {"section": "outcomes"}

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("computed in the request")

    monkeypatch.setattr("vaikuttavuus.views.pilot.CohortAnalysis", refuse)
    monkeypatch.setattr(snapshots, "build", refuse)
    second = html(lead, url)
    assert NONCE.sub("", second) == NONCE.sub("", first)
    assert VERSION.search(second).group(1) == VERSION.search(first).group(1)  # type: ignore[union-attr]
    assert len(ready_rows("bph")) == 1
    # a CSV link of the page is answered from the same snapshot
    link = re.search(r'href="(/pilot/bph/tables/[^"]+\.csv[^"]*)"', second)
    assert link is not None
    csv = lead.get(link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200
    assert csv.headers["X-Data-Version"] == row.data_version[:10]


def test_newer_data_show_the_stored_figures_while_a_worker_refreshes_them(
    lead: FlaskClient,
    cohort_app: Flask,
) -> None:
    url = "/pilot/bph/?section=overview"

    def in_english() -> None:  # drawn in the request (the build draws Finnish), then kept
        html(lead, url + "&lang=en")
        html(lead, url + "&lang=fi")

    before = html(lead, url)
    in_english()
    old_version = VERSION.search(before).group(1)  # type: ignore[union-attr]
    assert 'class="note data-refresh"' not in before

    queue = stored_only_queue(cohort_app)
    add_person()
    stale = html(lead, url)
    assert VERSION.search(stale).group(1) == old_version  # type: ignore[union-attr]
    assert 'class="note data-refresh"' in stale
    html(lead, url)  # asked again: queued once
    assert queue.huey.pending_count() == 1

    assert run_pending(queue) == 1
    fresh = html(lead, url)
    in_english()
    assert 'class="note data-refresh"' not in fresh
    assert VERSION.search(fresh).group(1) != old_version  # type: ignore[union-attr]
    assert len(ready_rows("bph")) == 2

    # a third data version: the oldest snapshot of the view goes, the newest two stay
    add_person()
    html(lead, url)
    assert run_pending(queue) == 1
    newest = html(lead, url)
    in_english()
    kept = {row.data_version[:10] for row in ready_rows("bph")}
    assert len(kept) == 2
    shown = [re.search(r"([0-9a-f]{10})\)", page).group(1) for page in (before, newest)]  # type: ignore[union-attr]
    assert shown[1] in kept
    assert shown[0] not in kept
    # the process holds one state and one drawn page of the view, not one per data version
    from vaikuttavuus.views import pilot as pilot_views

    database = db.engine.url.render_as_string(hide_password=True)
    assert sum(1 for slot in snapshots._STATES if slot[0] == database) == 1
    assert sum(1 for view in pilot_views._PAGES if view[0] == database) == 1


def test_a_finnish_page_is_drawn_by_the_build_not_in_the_web_request(
    lead: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build draws the view in Finnish anyway (to learn what it needs) and keeps the
    drawn page in the snapshot: a Finnish view of a new snapshot draws no chart in the web
    worker, and shows exactly what drawing it there shows."""
    from vaikuttavuus.services.cohort_page import SECTIONS
    from vaikuttavuus.views import pilot as pilot_views

    urls = [f"/pilot/{code}/?section={section}" for code in PILOTS for section in SECTIONS]
    urls += [
        "/pilot/bph/?section=cea&effect=qaly",
        "/pilot/older-adults/?section=services&sectors=1",
    ]
    monkeypatch.setattr(pilot_views, "_drawn_page", lambda _served: None)
    drawn_here = {url: html(lead, url) for url in urls}
    monkeypatch.undo()

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("drawn in the request")

    snapshots.forget_states()  # as a worker process that has not read the snapshots yet
    pilot_views._PAGES.clear()
    monkeypatch.setattr(pilot_views, "cohort_page", refuse)
    for url in urls:
        stored = html(lead, url)
        assert NONCE.sub("", stored) == NONCE.sub("", drawn_here[url]), url
        assert stored.count("<svg") + stored.count("data:image/svg") == drawn_here[url].count(
            "<svg"
        ) + drawn_here[url].count("data:image/svg"), url
    assert not pilot_views._PAGES
    # other languages are drawn in the request
    monkeypatch.undo()
    english = html(lead, "/pilot/bph/?section=outcomes&lang=en")
    assert "Outcomes" in english
    assert len(pilot_views._PAGES) == 1


def test_a_csv_without_its_section_comes_from_the_snapshot_that_holds_it(
    lead: FlaskClient, cohort_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaikuttavuus.services.cohort_tables import cohort_table

    html(lead, "/pilot/bph/?section=overview")
    html(lead, "/pilot/bph/?section=funnel")
    bph = pilot("bph")
    overview = snapshots.existing(
        bph, snapshots.cohort_key(bph, Filters(), view={"section": "overview"})
    )
    assert overview is not None
    with pytest.raises(snapshots.SnapshotMissError):  # not in the view a sectionless link names
        cohort_table(overview.analysis, "funnel_limits")

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("computed in the request")

    monkeypatch.setattr("vaikuttavuus.views.pilot.CohortAnalysis", refuse)
    answer = lead.get("/pilot/bph/tables/funnel_limits.csv")
    assert answer.status_code == 200
    assert answer.headers["X-Data-Version"] == overview.label
    assert answer.get_data(as_text=True).count("\n") > 1


def test_filters_never_seen_before_wait_for_the_worker(
    lead: FlaskClient,
    cohort_app: Flask,
) -> None:
    queue = stored_only_queue(cohort_app)
    waiting = html(lead, "/pilot/bph/?section=overview&arm=outpatient_clinic")
    assert '<meta http-equiv="refresh"' in waiting
    assert 'role="status"' in waiting
    assert run_pending(queue) == 1
    shown = html(lead, "/pilot/bph/?section=overview&arm=outpatient_clinic")
    assert '<meta http-equiv="refresh"' not in shown
    assert VERSION.search(shown) is not None


def key_of(code: str) -> snapshots.SnapshotKey:
    return snapshots.cohort_key(pilot(code), Filters(), view={"section": "overview"})


@pytest.mark.slow
def test_a_worker_process_builds_what_the_page_queued(
    cohort_app: Flask,
    tmp_path: Path,
) -> None:
    """``vaikuttavuus worker`` on the embedded SQLite queue builds a queued snapshot."""
    queue_url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    url = str(cohort_app.config["SQLALCHEMY_DATABASE_URI"])
    from vaikuttavuus import create_app

    producer = create_app(conftest.test_config(url, JOB_QUEUE_URL=queue_url))
    with producer.app_context():
        key = key_of("bph")
        assert jobs.enqueue_build(key) is True
        assert jobs.enqueue_build(key) is False  # queued once
        db.session.remove()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "JOB_QUEUE_URL": queue_url,
        "SECRET_KEY": str(cohort_app.config["SECRET_KEY"]),
        "PSEUDONYM_KEY": str(cohort_app.config["PSEUDONYM_KEY"]),
        "VAIKUTTAVUUS_INSTANCE": str(tmp_path / "instance"),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vaikuttavuus.cli", "worker", "--no-periodic"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not ready_rows("bph"):
                assert worker.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(1)
            [row] = ready_rows("bph")
            assert row.worker and row.worker.endswith(f":{worker.pid}")
        finally:
            worker.terminate()
            worker.wait(timeout=60)


def test_default_views_are_recomputed_once_the_data_have_been_quiet(
    cohort_app: Flask,
) -> None:
    from vaikuttavuus.services import precompute

    queued: list[list[snapshots.SnapshotKey]] = []
    # nothing computed yet: every pilot's default views at once, one build per pilot
    assert precompute.refresh_due(queued.append, now=1000.0) == 2
    assert {keys[0].pilot_id for keys in queued} == {pilot("bph").id, pilot("older-adults").id}
    for keys in queued:
        views = {key.params_dict["view"]["section"] for key in keys if key.kind == "cohort"}
        assert views >= {"overview", "outcomes"}
        assert "management" in {key.kind for key in keys}  # the management pack too
        assert {result.status for result in snapshots.build_any(keys)} == {"built"}
    queued.clear()
    assert precompute.refresh_due(queued.append, now=1010.0) == 0

    add_person("bph")  # a data change: wait until the data have been quiet for a minute
    assert precompute.refresh_due(queued.append, now=1020.0) == 0
    assert precompute.refresh_due(queued.append, now=1050.0) == 0
    assert precompute.refresh_due(queued.append, now=1081.0) == 1
    [keys] = queued
    assert {key.pilot_id for key in keys} == {pilot("bph").id}


def test_the_management_summary_and_its_pdf_come_from_the_snapshot(
    cohort_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = user_client(cohort_app, "johtaja", "management")
    first = {code: html(manager, f"/management/?pilot={code}") for code in PILOTS}
    assert all('class="note data-version"' in page for page in first.values())
    db.session.rollback()
    stored = db.session.scalars(
        select(AnalysisSnapshot).where(
            AnalysisSnapshot.kind == "management", AnalysisSnapshot.status == "ready"
        )
    ).all()
    assert len(stored) == len(PILOTS)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("computed in the request")

    monkeypatch.setattr("vaikuttavuus.services.management_report.released_cohort", refuse)
    monkeypatch.setattr("vaikuttavuus.views.management.management_summary", refuse)
    monkeypatch.setattr("vaikuttavuus.views.management.render_management_pdf", refuse)
    monkeypatch.setattr("vaikuttavuus.views.management.render_board_pack", refuse)
    for code in PILOTS:
        again = html(manager, f"/management/?pilot={code}")
        assert NONCE.sub("", again) == NONCE.sub("", first[code])
        pdf = manager.get(f"/management/{code}/summary.pdf?lang_pdf=sv")
        assert pdf.status_code == 200
        assert pdf.data.startswith(b"%PDF")
        version = next(row.data_version for row in stored if row.pilot_id == pilot(code).id)
        assert pdf.headers["X-Data-Version"] == version[:10]
    pack = manager.get("/management/board-pack.pdf?lang_pdf=fi")
    assert pack.status_code == 200
    assert pack.data.startswith(b"%PDF")


def test_the_summaries_of_one_release_are_cut_from_one_read_of_the_data(
    cohort_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker builds the default year and the last two quarters of a pilot from one read
    of the data (the union of their windows); each summary is the one its own read gives."""
    from vaikuttavuus.services import management_snapshots, precompute

    manager = user_client(cohort_app, "johtaja", "management")
    keys = precompute.management_keys(pilot("bph"))
    assert len(keys) >= 2
    reads: list[int] = []
    shared_read = management_snapshots.shared_read

    def counted(*args: Any) -> Any:
        reads.append(len(args[2]))
        return shared_read(*args)

    monkeypatch.setattr(management_snapshots, "shared_read", counted)
    assert {result.status for result in snapshots.build_any(keys)} == {"built"}
    assert reads == [len(keys)]
    periods = [str(key.params_dict["period"]) for key in keys]

    def pages() -> dict[str, str]:
        """The pages without the minute their snapshot was taken (the builds below may fall
        in another minute; the data version beside it must be the same)."""
        return {
            period: TAKEN_AT.sub(
                "", NONCE.sub("", html(manager, f"/management/?pilot=bph&period={period}"))
            )
            for period in periods
        }

    together = pages()
    assert all('class="note data-version"' in page for page in together.values())
    assert len(set(together.values())) == len(periods)  # each page shows its own period
    db.session.execute(delete(AnalysisSnapshot).where(AnalysisSnapshot.kind == "management"))
    db.session.commit()
    snapshots.forget_states()
    for key in keys:  # each from a read of its own, as a page's request for one builds it
        assert [result.status for result in snapshots.build_any([key])] == ["built"]
    assert reads == [len(keys)]
    assert pages() == together


def test_a_pilots_default_views_and_management_summaries_come_from_one_read(
    cohort_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker builds a pilot's default views and its management summaries in one read
    snapshot from one read of the answers; each page is the one builds of their own give."""
    from vaikuttavuus import queries
    from vaikuttavuus.services import precompute
    from vaikuttavuus.services.cohort_page import SECTIONS

    lead = user_client(cohort_app, "vastaava", "pilot_lead")
    manager = user_client(cohort_app, "johtaja", "management")
    keys = precompute.default_keys(pilot("bph"))
    views = [key for key in keys if key.kind == "cohort"]
    summaries = [key for key in keys if key.kind != "cohort"]
    assert views and summaries
    reads: list[bool] = []
    read_scores = queries.cohort_scores

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(bool(kwargs.get("recorded")))
        return read_scores(*args, **kwargs)

    monkeypatch.setattr(queries, "cohort_scores", counted)
    assert {result.status for result in snapshots.build_any(keys)} == {"built"}
    assert reads == [True]
    assert len({row.data_version for row in ready_rows("bph")}) == 1
    urls = [f"/pilot/bph/?section={section}" for section in SECTIONS] + [
        f"/management/?pilot=bph&period={key.params_dict['period']}" for key in summaries
    ]

    def pages() -> dict[str, str]:
        clients = {"pilot": lead, "management": manager}
        return {
            url: TAKEN_AT.sub("", NONCE.sub("", html(clients[url.split("/")[1]], url)))
            for url in urls
        }

    together = pages()
    db.session.execute(delete(AnalysisSnapshot))
    db.session.commit()
    snapshots.forget_states()
    assert {result.status for result in snapshots.build_any(views)} == {"built"}
    assert {result.status for result in snapshots.build_any(summaries)} == {"built"}
    assert reads == [True, False, True]  # each on its own: the views' read, the summaries'
    apart = pages()
    assert apart.keys() == together.keys()
    for url, page in together.items():
        assert page == apart[url], url


def test_the_cohort_summary_pdf_comes_from_its_snapshot(
    lead: FlaskClient, cohort_app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.web.report_numbers import pdf_text
    from vaikuttavuus.services.cohort_summary import render_cohort_summary_pdf

    first = lead.get("/pilot/bph/summary.pdf?lang_pdf=en")
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    [row] = ready_rows("bph")
    assert row.params["view"] == {"section": snapshots.SUMMARY_VIEW}
    assert first.headers["X-Data-Version"] == row.data_version[:10]
    computed_now = render_cohort_summary_pdf(db.session, pilot("bph"), Filters(), "en")
    db.session.rollback()

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("computed in the request")

    monkeypatch.setattr("vaikuttavuus.views.pilot.render_cohort_summary_pdf", refuse)
    monkeypatch.setattr("vaikuttavuus.views.pilot.CohortAnalysis", refuse)
    monkeypatch.setattr(snapshots, "build", refuse)
    again = lead.get("/pilot/bph/summary.pdf?lang_pdf=en")
    assert again.status_code == 200
    assert again.headers["X-Data-Version"] == row.data_version[:10]
    # every figure of the stored analysis is the one computed from the data now
    # (but the time the PDF was made, which may fall in the next minute)
    assert TAKEN_AT.sub("", pdf_text(again.data, tmp_path)) == TAKEN_AT.sub(
        "", pdf_text(computed_now, tmp_path)
    )
    swedish = lead.get("/pilot/bph/summary.pdf?lang_pdf=sv")
    assert swedish.status_code == 200 and swedish.data.startswith(b"%PDF")
    assert len(ready_rows("bph")) == 1


def test_the_default_cohort_summary_is_precomputed(cohort_app: Flask) -> None:
    from vaikuttavuus.services import precompute

    views = [
        key.params_dict.get("view")
        for key in precompute.default_keys(pilot("bph"))
        if key.kind == "cohort"
    ]
    assert {"section": snapshots.SUMMARY_VIEW} in views
