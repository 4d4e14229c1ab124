"""Browser-test fixtures: a live server, Debian's Chromium through Playwright, screenshots.

The live server is the real application served by werkzeug's threaded WSGI server in a
background thread, on a free loopback port, against a SQLite database migrated and loaded
with the definitions exactly as ``tests/conftest.py`` prepares one. Tests create people,
enrolments and links through the public services (``LiveServer.patient_link``) and read the
stored answers back through the models, inside the app context of the same application.

Chromium is Debian's ``/usr/bin/chromium`` (``VAIKUTTAVUUS_CHROMIUM`` overrides the path);
``npx playwright install`` cannot download browsers here. If it is missing, every browser test
fails with a message saying how to install it: CI installs it (``scripts/test``), so a skip
would only hide a broken set-up. Playwright starts each browser with a new, empty profile.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)
from playwright.sync_api import Response as PageResponse
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import PASSWORD, test_config
from vaikuttavuus import create_app
from vaikuttavuus.extensions import db, limiter

CHROMIUM = os.environ.get("VAIKUTTAVUUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
STAFF_PASSWORD = PASSWORD


# -- the live server ---------------------------------------------------------------------------


@dataclass
class LiveServer:
    """The application behind a real HTTP server, with helpers that use the public services."""

    app: Flask
    base_url: str
    _people: int = 0

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def link_url(self, token: str, rest: str = "") -> str:
        return self.url(f"/r/{token}{rest}")

    def enrol(
        self,
        pilot: str = "bph",
        arm: str | None = None,
        index_offset_days: int = 10,
        **person: Any,
    ) -> int:
        """Add a synthetic person and enrol them; returns the enrolment id."""
        from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol

        self._people += 1
        data: dict[str, Any] = {
            "first_name": "Testi",
            "last_name": f"Selain{self._people}",
            "birth_year": 1950,
            "sex": "male" if pilot == "bph" else "female",
        }
        data.update(person)
        arm = arm or ("operating_room" if pilot == "bph" else "outreach")
        with self.app.app_context():
            created = add_person(db.session, NewPerson(**data))
            enrolment = enrol(
                db.session,
                created,
                pilot_code=pilot,
                arm_code=arm,
                index_date=date.today() + timedelta(days=index_offset_days),
            )
            db.session.commit()
            return int(enrolment.id)

    def issue_link(self, enrolment_id: int, time_point: str = "baseline") -> str:
        """A new personal link token for the enrolment's invitation at ``time_point``."""
        from vaikuttavuus.models import Invitation, TimePoint
        from vaikuttavuus.services.patient_flow import issue_token

        with self.app.app_context():
            invitation = db.session.scalar(
                select(Invitation)
                .join(TimePoint, Invitation.time_point_id == TimePoint.id)
                .where(Invitation.enrolment_id == enrolment_id, TimePoint.code == time_point)
            )
            assert invitation is not None, f"no {time_point} invitation for {enrolment_id}"
            token = issue_token(db.session, invitation)
            db.session.commit()
            return token

    def patient_link(
        self,
        pilot: str = "bph",
        time_point: str = "baseline",
        index_offset_days: int | None = None,
        **person: Any,
    ) -> tuple[int, str]:
        """Enrol a new person with the time point's window open today; (enrolment id, token)."""
        if index_offset_days is None:
            index_offset_days = OPEN_TODAY[(pilot, time_point)]
        enrolment_id = self.enrol(pilot, index_offset_days=index_offset_days, **person)
        return enrolment_id, self.issue_link(enrolment_id, time_point)

    def submit_answers(
        self,
        enrolment_id: int,
        time_point: str,
        answers: dict[str, str],
        language: str = "fi",
        *,
        submit: bool = True,
    ) -> None:
        """Save (and submit) a time point's answers through the patient-flow service, as the
        patient pages do, whether or not its window is open today."""
        from vaikuttavuus.domain.answers import canonical
        from vaikuttavuus.models import Invitation, TimePoint
        from vaikuttavuus.services import patient_flow

        with self.app.app_context():
            invitation = db.session.scalar(
                select(Invitation)
                .join(TimePoint, Invitation.time_point_id == TimePoint.id)
                .where(Invitation.enrolment_id == enrolment_id, TimePoint.code == time_point)
            )
            assert invitation is not None
            responses = patient_flow.ensure_responses(db.session, invitation, language)
            steps = patient_flow.steps_for(responses)
            by_id = {r.id: r for r in responses}
            for step in steps:
                values = {
                    item.id: canonical(step.spec, item, answers[item.id])
                    for item in step.section.items
                    if item.id in answers
                }
                patient_flow.save_section(
                    db.session, by_id[step.response_id], step.section, values, language
                )
            if submit:
                result = patient_flow.submit(db.session, invitation, responses, steps)
                assert result.submitted, f"step {result.first_incomplete_step} is incomplete"
            db.session.commit()

    def responses(self, enrolment_id: int, time_point: str | None = None) -> list[StoredResponse]:
        """The enrolment's responses with their stored answers, in instrument order."""
        from vaikuttavuus.models import Answer, Response, TimePoint

        with self.app.app_context():
            statement = (
                select(Response, TimePoint.code)
                .join(TimePoint, Response.time_point_id == TimePoint.id)
                .where(Response.enrolment_id == enrolment_id)
                .order_by(Response.id)
            )
            if time_point is not None:
                statement = statement.where(TimePoint.code == time_point)
            found = []
            for response, code in db.session.execute(statement):
                answers = dict(
                    db.session.execute(
                        select(Answer.item_id, Answer.value).where(
                            Answer.response_id == response.id
                        )
                    ).all()
                )
                found.append(
                    StoredResponse(
                        instrument=response.instrument_code,
                        time_point=code,
                        status=response.status,
                        mode=response.mode,
                        language=response.language,
                        answers=answers,
                    )
                )
            return found

    def count_responses(self, enrolment_id: int) -> int:
        from vaikuttavuus.models import Response

        with self.app.app_context():
            return int(
                db.session.scalar(
                    select(func.count(Response.id)).where(Response.enrolment_id == enrolment_id)
                )
                or 0
            )

    def person_state(self, enrolment_id: int) -> dict[str, Any]:
        from vaikuttavuus.models import Enrolment, Invitation

        with self.app.app_context():
            enrolment = db.session.get(Enrolment, enrolment_id)
            assert enrolment is not None
            statuses = db.session.scalars(
                select(Invitation.status).where(Invitation.enrolment_id == enrolment_id)
            ).all()
            return {
                "opted_out": enrolment.person.opted_out_at is not None,
                "preferred_language": enrolment.person.preferred_language,
                "invitation_statuses": sorted(statuses),
                "pseudonym": enrolment.person.pseudonym,
            }

    def create_user(self, username: str, role: str) -> None:
        from vaikuttavuus.services.users import create_user

        with self.app.app_context():
            create_user(
                db.session,
                username=username,
                password=STAFF_PASSWORD,
                role=role,
                display_name=f"Testi {role}",
                pilot_codes=("bph", "older-adults") if role in {"clinician", "pilot_lead"} else (),
            )
            db.session.commit()


@dataclass(frozen=True)
class StoredResponse:
    instrument: str
    time_point: str
    status: str
    mode: str
    language: str
    answers: dict[str, str]


# Index-date offsets (days from today) that put a time point's answering window around today.
OPEN_TODAY: dict[tuple[str, str], int] = {
    ("bph", "baseline"): 10,  # window index−60 … index
    ("bph", "m3"): -90,  # window index+60 … index+120
    ("older-adults", "baseline"): 0,  # window index−14 … index+30
    ("older-adults", "m6"): -190,  # window index+152 … index+227
}


def _prepare_database(path: Path) -> None:
    from vaikuttavuus.database import upgrade_schema
    from vaikuttavuus.services.definitions import sync_definitions

    app = create_app(test_config(f"sqlite:///{path}"))
    with app.app_context():
        upgrade_schema()
        sync_definitions(db.session)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app on a real threaded HTTP server on 127.0.0.1 and a free port, for the session."""
    # On tmpfs when there is one: the app commits with synchronous=FULL, and fsyncs on a busy
    # shared disk would dominate the page times. The data are throwaway.
    shm = Path("/dev/shm")
    folder = (
        Path(tempfile.mkdtemp(prefix="vaikuttavuus-browser-", dir=shm))
        if shm.is_dir() and os.access(shm, os.W_OK)
        else tmp_path_factory.mktemp("browser")
    )
    path = folder / "browser.sqlite3"
    _prepare_database(path)
    app = create_app(
        test_config(
            f"sqlite:///{path}",
            # Some tests open unknown links on purpose; the throttle itself is tested elsewhere.
            PATIENT_LINK_MISS_LIMIT="1000 per minute",
            LOGIN_RATE_LIMIT="1000 per minute",
        )
    )
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base_url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, base_url=base_url)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()
        if folder.parent == shm:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_limits(live_server: LiveServer) -> None:
    with live_server.app.app_context():
        limiter.reset()


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    manager = sync_playwright()
    instance = manager.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. The browser tests need Debian's Chromium: "
            "apt-get install -y --no-install-recommends chromium (scripts/test installs it; "
            "VAIKUTTAVUUS_CHROMIUM points at another binary). `playwright install` cannot "
            "download browsers on these machines.",
            pytrace=False,
        )
    instance = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield instance
    finally:
        instance.close()


@dataclass
class PageWatch:
    """What went wrong in the browser while a test ran: server errors, CSP and script errors."""

    server_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_response(self, response: PageResponse) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def on_console(self, message: ConsoleMessage) -> None:
        # 4xx pages (invalid link 404, validation 422) log "Failed to load resource"; those
        # statuses are asserted by the tests. Anything else (a CSP refusal, a script error) is
        # a failure.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.console_errors.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.page_errors.append(str(error))

    def problems(self) -> list[str]:
        return (
            [f"server error: {e}" for e in self.server_errors]
            + [f"console error: {e}" for e in self.console_errors]
            + [f"script error: {e}" for e in self.page_errors]
        )


ContextFactory = Callable[..., BrowserContext]


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def new_context(browser: Browser, page_watch: PageWatch) -> Iterator[ContextFactory]:
    """Make fresh browser contexts (a new device: no cookies); all are closed at the end.

    Defaults to a phone: 390×844 CSS pixels, touch, Finnish locale. Pages opened in these
    contexts report server errors (5xx), console errors (CSP refusals included) and uncaught
    script errors, and the test fails if there were any.
    """
    contexts: list[BrowserContext] = []

    def make(phone: bool = True, **options: Any) -> BrowserContext:
        settings: dict[str, Any] = {
            "viewport": PHONE if phone else DESKTOP,
            "locale": "fi-FI",
            "timezone_id": "Europe/Helsinki",
            "has_touch": phone,
            "is_mobile": phone,
            "device_scale_factor": 1,  # sharper screenshots are not worth their time here
        }
        settings.update(options)
        context = browser.new_context(**settings)
        context.set_default_timeout(10_000)
        context.on("page", _watch)
        contexts.append(context)
        return context

    def _watch(page: Page) -> None:
        page.on("response", page_watch.on_response)
        page.on("console", page_watch.on_console)
        page.on("pageerror", page_watch.on_page_error)

    yield make
    for context in contexts:
        context.close()
    problems = page_watch.problems()
    assert not problems, "problems in the browser:\n" + "\n".join(problems)


@pytest.fixture
def context(new_context: ContextFactory) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# -- screenshots -------------------------------------------------------------------------------


class Screenshots:
    """Full-page screenshots under test-artifacts/screenshots/<test>/NN-<name>.png."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        shutil.rmtree(folder, ignore_errors=True)

    def __call__(self, page: Page, name: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "page"
        path = self.folder / f"{self.count:02d}-{slug}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Screenshots:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return Screenshots(SCREENSHOTS / request.node.module.__name__.rsplit(".", 1)[-1] / name)
