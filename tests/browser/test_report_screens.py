"""The cohort report screens in Chromium: the pilot lead's cost-effectiveness, funnel and
services sections and the management page, as screenshots on a desktop and a phone.

A live server of its own (like ``live_server`` in conftest.py) on a SQLite database with the
synthetic data set of both pilots (``tests/support/cohort_data.py``), so that every figure of
these sections has data: both BPH arms with ended care cycles for the cost-effectiveness,
several units and surgeons for the funnel plots, service exposures for the services.
Screenshots go to the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import Page, expect
from werkzeug.serving import BaseWSGIServer, make_server

from tests.browser.conftest import (
    PHONE,
    STAFF_PASSWORD,
    ContextFactory,
    LiveServer,
    PageWatch,
    Screenshots,
    _prepare_database,
)
from tests.browser.support import PageAudit, small_targets
from tests.conftest import test_config as app_config
from tests.support.cohort_data import generate
from vaikuttavuus import create_app
from vaikuttavuus.extensions import db

pytestmark = pytest.mark.browser

LEAD, BOSS = "pilotti-raportit", "johto-raportit"


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app on a real HTTP server with the synthetic cohorts loaded, for this module."""
    from vaikuttavuus.services.demo_data import load_demo_data

    shm = Path("/dev/shm")
    folder = (
        Path(tempfile.mkdtemp(prefix="vaikuttavuus-reports-", dir=shm))
        if shm.is_dir() and os.access(shm, os.W_OK)
        else tmp_path_factory.mktemp("reports")
    )
    path = folder / "reports.sqlite3"
    _prepare_database(path)
    app = create_app(app_config(f"sqlite:///{path}", LOGIN_RATE_LIMIT="1000 per minute"))
    with app.app_context():
        load_demo_data(db.session, generate())
        db.session.commit()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(app=app, base_url=f"http://127.0.0.1:{server.server_port}")
    live.create_user(LEAD, "pilot_lead")
    live.create_user(BOSS, "management")
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()
        if folder.parent == shm:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    return Screenshots(tmp_path / "screenshots")


def _log_in(server: LiveServer, new_context: ContextFactory, username: str) -> Page:
    page = new_context(phone=False).new_page()
    page.set_default_timeout(30_000)  # a section computes its figures on request
    page.goto(server.url("/auth/login"))
    page.get_by_label("Käyttäjätunnus").fill(username)
    page.get_by_label("Salasana").fill(STAFF_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Kirjaudu sisään").click()
    expect(page.get_by_role("button", name="Kirjaudu ulos")).to_be_visible()
    return page


def _open(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url


def _charts_shown(page: Page, at_least: int) -> None:
    """At least ``at_least`` charts, each loaded, visible, wide enough and described."""
    charts = page.locator("img.chart")
    assert charts.count() >= at_least
    for index in range(charts.count()):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        expect(chart).to_be_visible()
        assert len(chart.get_attribute("alt") or "") > 20
        assert chart.evaluate("(img) => img.complete && img.naturalWidth > 0")
        assert (chart.bounding_box() or {}).get("width", 0) > 250


# Standalone links that once were smaller than the audit's 44×44 px touch targets: the page
# audits below check every target, test_csv_links_are_large_enough_to_tap these by name.
SMALL_LINKS = (
    "Numbers as CSV",  # in the caption of every table
    "Every bootstrap replicate as CSV",
    "The whole curve as CSV",
    "The funnel limits as CSV",
)


def _small_link_problems(server: LiveServer, problems: list[str]) -> list[str]:
    texts = [_fi(server, message) for message in SMALL_LINKS]
    return [p for p in problems if any(f'target a "{text}"' in p for text in texts)]


def _desktop_and_phone(
    server: LiveServer, page: Page, screenshots: Screenshots, name: str, check: object
) -> None:
    """``check`` the page and audit it (axe WCAG A/AA, one h1, the page language, 320 px
    reflow, target sizes) on a desktop and at a phone's width, with a screenshot of each."""
    audit = PageAudit(screenshots)
    for width, viewport in (("desktop", None), ("phone", PHONE)):
        if viewport is not None:
            page.set_viewport_size(viewport)
        check(page)  # type: ignore[operator]
        audit.check(
            page, f"{name}, {width}", same_page_as=None if viewport is None else f"{name}, desktop"
        )
    audit.assert_clean()
    shots = sorted(screenshots.folder.glob("*.png"))
    assert len(shots) >= 2 and all(shot.stat().st_size > 10_000 for shot in shots)


def _fi(server: LiveServer, message: str, **values: str) -> str:
    """A UI text as the Finnish pages show it."""
    with server.app.test_request_context(), force_locale("fi"):
        return str(gettext(message, **values))


SECTIONS = {
    # (pilot, section): (heading msgid, charts at least, tables at least)
    ("bph", "cea"): ("Cost-effectiveness", 2, 5),
    ("bph", "funnel"): ("Funnel plots", 2, 2),
    ("older-adults", "services"): ("Services", 2, 8),
}


@pytest.mark.parametrize(("pilot", "section"), list(SECTIONS))
def test_pilot_report_section(
    report_server: LiveServer,
    new_context: ContextFactory,
    page_watch: PageWatch,
    screenshots: Screenshots,
    pilot: str,
    section: str,
) -> None:
    message, charts, tables = SECTIONS[(pilot, section)]
    heading = _fi(report_server, message)
    page = _log_in(report_server, new_context, LEAD)
    _open(page, report_server.url(f"/pilot/{pilot}/?section={section}"))

    def check(page: Page) -> None:
        expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        expect(page.locator("nav a[aria-current=page]")).to_have_text(heading)
        _charts_shown(page, charts)
        data = page.locator("table.data")
        assert data.count() >= tables
        expect(data.first).to_be_visible()
        assert data.first.locator("tbody tr").count() >= 1
        links = page.locator("a.csv-link")
        assert links.count() >= tables  # every table has its numbers as CSV
        expect(links.first).to_be_visible()

    _desktop_and_phone(report_server, page, screenshots, f"{pilot} {section}", check)
    assert page_watch.problems() == []


def test_management_page(
    report_server: LiveServer,
    new_context: ContextFactory,
    page_watch: PageWatch,
    tmp_path: Path,
) -> None:
    """The management page of each pilot: the answer, the key figures and the quarterly trend,
    the main figure, no CSV; the download buttons say what they will download and follow the
    choices as they change (staff.js), before anything is shown again."""
    page = _log_in(report_server, new_context, BOSS)
    for pilot in ("bph", "older-adults"):
        page.set_viewport_size({"width": 1280, "height": 900})
        _open(page, report_server.url(f"/management/?pilot={pilot}"))

        def check(page: Page) -> None:
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            expect(page.locator("p.lead")).to_be_visible()  # the answer
            assert page.locator("table.data").count() >= 2  # key figures, quarterly trend
            expect(page.locator("table.data").first).to_be_visible()
            _charts_shown(page, 0)
            assert page.locator("a.csv-link").count() == 0  # management gets no CSV
            button = page.locator("button[formaction='/management/summary.pdf']")
            expect(button).to_be_visible()

        shots = Screenshots(tmp_path / "screenshots" / pilot)
        _desktop_and_phone(report_server, page, shots, f"management {pilot}", check)
    page.set_viewport_size({"width": 1280, "height": 900})
    _open(page, report_server.url("/management/?pilot=bph&lang_pdf=fi"))
    button = page.locator("button[formaction='/management/summary.pdf']")
    pack = page.locator("button[formaction='/management/board-pack.pdf']")
    assert "suomi" in button.inner_text()
    period = page.locator("#period")
    chosen = period.locator("option").nth(period.locator("option").count() - 1)
    period.select_option(chosen.get_attribute("value"))
    page.select_option("#lang_pdf", "sv")
    page.select_option("#pilot", "older-adults")
    name = page.locator("#pilot option:checked").inner_text().strip()
    expected = _fi(
        report_server,
        "Download PDF: %(pilot)s, %(period)s, %(language)s",
        pilot=name,
        period=chosen.inner_text().strip(),
        language="svenska",
    )
    expect(button).to_have_text(expected)
    expect(pack).to_contain_text("svenska")
    with page.expect_download() as download:
        button.click()
    assert f"older-adults-management-summary-{chosen.get_attribute('value')}-sv-" in (
        download.value.suggested_filename
    )
    assert page_watch.problems() == []


def test_csv_links_are_large_enough_to_tap(
    report_server: LiveServer, new_context: ContextFactory
) -> None:
    page = _log_in(report_server, new_context, LEAD)
    problems = []
    for section in ("cea", "funnel"):
        _open(page, report_server.url(f"/pilot/bph/?section={section}"))
        problems += small_targets(page)
    assert _small_link_problems(report_server, problems) == []
