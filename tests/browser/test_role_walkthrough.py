"""Every role, as a new user finds it (issue 17): each role's main pages in Finnish and
Swedish, on a phone (390×844) and a desktop (1366×900), must have

* no English or internal text (``language_check.py``: catalogue messages left in English,
  English sentences, snake_case codes, raw time-point codes),
* no horizontal scrolling of the page, and on a desktop no table that has to scroll sideways,
* no touch target under 44×44 px (``support.small_targets``),
* no axe-core violation (WCAG 2.0/2.1 A and AA).

One server with the synthetic data set of both pilots (300 people), one browser; each role
logs in once per language and its pages are loaded once per language and checked at both
widths (the viewport is resized, the page is not loaded again). axe runs at both widths in
Finnish and on the phone in Swedish (what it checks does not change with the language).
Screenshots of every check go to ``test-artifacts/screenshots/test_role_walkthrough/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from tests.browser.conftest import (
    SCREENSHOTS,
    STAFF_PASSWORD,
    LiveServer,
    PageWatch,
    _prepare_database,
)
from tests.browser.language_check import untranslated_texts
from tests.browser.support import axe_violations, describe_violations, small_targets
from tests.conftest import test_config as app_config
from tests.support.cohort_data import generate
from vaikuttavuus import create_app
from vaikuttavuus.extensions import db

pytestmark = pytest.mark.browser

WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}
LANGUAGES = ("fi", "sv")
USERS = {
    "clinician": "kliinikko-kierros",
    "pilot_lead": "pilotti-kierros",
    "management": "johto-kierros",
    "admin": "yllapito-kierros",
}

# Problems known to remain, per role: (page label, kind of check) → reason. A listed problem
# that no longer occurs fails the test, so the entry is removed when it is fixed.
KNOWN: dict[str, dict[tuple[str, str], str]] = {}


@dataclass
class Walk:
    """The pages of the synthetic data set a role's walk opens."""

    server: LiveServer
    bph_patient: str = ""
    older_patient: str = ""
    invitation: int = 0
    user_id: int = 0
    patient_links: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    from vaikuttavuus.models import (
        ClinicalMeasurement,
        Enrolment,
        Invitation,
        Person,
        Pilot,
        Response,
        ServiceExposure,
        TimePoint,
        User,
    )
    from vaikuttavuus.services.demo_data import load_demo_data

    shm = Path("/dev/shm")
    folder = (
        Path(tempfile.mkdtemp(prefix="vaikuttavuus-walk-", dir=shm))
        if shm.is_dir() and os.access(shm, os.W_OK)
        else tmp_path_factory.mktemp("walk")
    )
    path = folder / "walk.sqlite3"
    _prepare_database(path)
    app = create_app(
        app_config(
            f"sqlite:///{path}",
            LOGIN_RATE_LIMIT="1000 per minute",
            PATIENT_LINK_MISS_LIMIT="1000 per minute",
        )
    )
    with app.app_context():
        load_demo_data(db.session, generate())
        db.session.commit()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(app=app, base_url=f"http://127.0.0.1:{server.server_port}")
    app.config["PUBLIC_BASE_URL"] = live.base_url
    with app.app_context():
        from vaikuttavuus.services.users import create_user

        for role, username in USERS.items():
            create_user(
                db.session,
                username=username,
                password=STAFF_PASSWORD,
                role=role,
                display_name=f"Kaija Kierros ({username})",
                pilot_codes=("bph", "older-adults") if role in {"clinician", "pilot_lead"} else (),
            )
        db.session.commit()
    found = Walk(server=live)
    with app.app_context():

        def person(pilot: str, *conditions: object) -> str:
            return str(
                db.session.scalar(
                    select(Person.pseudonym)
                    .join(Enrolment, Enrolment.person_id == Person.id)
                    .join(Pilot, Enrolment.pilot_id == Pilot.id)
                    .where(Pilot.code == pilot, Enrolment.status == "active", *conditions)
                    .order_by(Person.id)
                    .limit(1)
                )
            )

        answered_three = (
            select(Response.enrolment_id)
            .group_by(Response.enrolment_id)
            .having(db.func.count(db.func.distinct(Response.time_point_id)) >= 3)
        )
        found.bph_patient = person(
            "bph",
            Enrolment.id.in_(answered_three),
            Enrolment.id.in_(select(ClinicalMeasurement.enrolment_id)),
        )
        found.older_patient = person(
            "older-adults",
            Enrolment.id.in_(answered_three),
            Enrolment.id.in_(select(ServiceExposure.enrolment_id)),
        )
        found.user_id = int(
            db.session.scalar(select(User.id).where(User.username == USERS["clinician"])) or 0
        )
    # New people whose questionnaires are open today (the data set's may all be answered).
    for pilot, time_point in (("bph", "m3"), ("older-adults", "m6"), ("bph", "baseline")):
        enrolment_id, token = live.patient_link(pilot, time_point)
        found.patient_links[f"{pilot} {time_point}"] = token
        if time_point == "m3":
            with app.app_context():
                found.invitation = int(
                    db.session.scalar(
                        select(Invitation.id)
                        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
                        .where(Invitation.enrolment_id == enrolment_id, TimePoint.code == "m3")
                    )
                    or 0
                )
    thread = threading.Thread(target=server.serve_forever, name="walk-server", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()
        if folder.parent == shm:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Findings:
    role: str
    problems: list[str] = field(default_factory=list)
    known_seen: set[tuple[str, str]] = field(default_factory=set)
    checked: int = 0
    seconds: float = 0.0

    def add(self, label: str, kind: str, lines: list[str]) -> None:
        if not lines:
            return
        if (label, kind) in KNOWN.get(self.role, {}):
            self.known_seen.add((label, kind))
            return
        self.problems.append(f"{label} [{kind}]:\n    " + "\n    ".join(lines[:12]))

    def assert_clean(self) -> None:
        assert self.checked, "no page was checked"
        gone = set(KNOWN.get(self.role, {})) - self.known_seen
        assert not gone, f"known problems no longer found (remove them from KNOWN): {gone}"
        assert not self.problems, (
            f"{self.role}: problems on {self.checked} page checks:\n" + "\n".join(self.problems)
        )


def overflow(page: Page, width: int, *, tables_must_fit: bool) -> list[str]:
    """The page may not scroll sideways; on a desktop no table may need to either."""
    found: dict[str, object] = page.evaluate(
        """([width, tables]) => {
          const doc = document.documentElement;
          const wide = [...document.querySelectorAll('body *')]
            .filter((el) => el.getClientRects().length && !el.closest('.table-wrap')
                            && el.getBoundingClientRect().right > width + 0.5)
            .slice(0, 5)
            .map((el) => el.tagName.toLowerCase() + '.' + String(el.className).replace(/ /g, '.')
                         + ' right=' + Math.round(el.getBoundingClientRect().right));
          const clipped = tables ? [...document.querySelectorAll('.table-wrap')]
            .filter((wrap) => wrap.getClientRects().length
                              && wrap.scrollWidth > wrap.clientWidth + 1)
            .map((wrap) => (wrap.getAttribute('aria-label') || '?') + ': '
                           + wrap.scrollWidth + ' px in ' + wrap.clientWidth + ' px') : [];
          return {scroll: doc.scrollWidth, wide, clipped};
        }""",
        [width, tables_must_fit],
    )
    lines = []
    if int(found["scroll"]) > width:  # type: ignore[call-overload]
        lines.append(f"the page is {found['scroll']} px wide: {found['wide']}")
    lines += [f"a table scrolls sideways: {t}" for t in found["clipped"]]  # type: ignore[attr-defined]
    return lines


Pages = list[tuple[str, str]]  # (label, path)
NOT_FOUND_PAGES = frozenset({"not valid"})  # answered 404 on purpose


def _log_in(context: BrowserContext, server: LiveServer, role: str, language: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(60_000)  # a cohort section computes its figures on request
    page.goto(server.url(f"/auth/login?lang={language}"))
    page.fill("#username", USERS[role])
    page.fill("#password", STAFF_PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit]").click()
    expect(page.locator("form.logout")).to_be_visible()
    return page


def walk_pages(
    browser: Browser,
    watch: PageWatch,
    server: LiveServer,
    role: str,
    pages: Pages,
    *,
    prepare: Callable[[Page, str], None] | None = None,
    fresh: bool = True,
) -> Findings:
    findings = Findings(role)
    started = time.monotonic()
    shots = SCREENSHOTS / "test_role_walkthrough" / role
    if fresh:
        shutil.rmtree(shots, ignore_errors=True)
    for language in LANGUAGES:
        context = browser.new_context(
            viewport=WIDTHS["phone"], locale=f"{language}-FI", device_scale_factor=1
        )
        context.set_default_timeout(60_000)
        try:
            if role == "patient":
                page = context.new_page()
            else:
                page = _log_in(context, server, role, language)
            page.on("response", watch.on_response)
            page.on("console", watch.on_console)
            page.on("pageerror", watch.on_page_error)
            for label, path in pages:
                if prepare is not None:
                    prepare(page, label)
                separator = "&" if "?" in path else "?"
                response = page.goto(server.url(f"{path}{separator}lang={language}"))
                expected = 404 if label in NOT_FOUND_PAGES else 200
                assert response is not None and response.status == expected, f"{label}: {path}"
                for width_name, viewport in WIDTHS.items():
                    page.set_viewport_size(viewport)
                    where = f"{label} ({language}, {width_name})"
                    findings.checked += 1
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(
                        path=str(shots / f"{label}-{language}-{width_name}.png".replace(" ", "-")),
                        full_page=True,
                    )
                    findings.add(where, "language", untranslated_texts(page, language))
                    findings.add(
                        where,
                        "overflow",
                        overflow(page, viewport["width"], tables_must_fit=width_name == "desktop"),
                    )
                    findings.add(where, "targets", small_targets(page))
                    if language == "fi" or width_name == "phone":
                        violations = axe_violations(page)
                        if violations:
                            findings.add(where, "axe", [describe_violations(violations)])
                page.set_viewport_size(WIDTHS["phone"])
        finally:
            context.close()
    findings.seconds = time.monotonic() - started
    print(f"\n{role}: {findings.checked} page checks in {findings.seconds:.1f} s")
    return findings


@pytest.fixture
def watch() -> Iterator[PageWatch]:
    watched = PageWatch()
    yield watched
    assert not watched.problems(), "\n".join(watched.problems())


# -- the roles ------------------------------------------------------------------------------------


def test_patient(browser: Browser, watch: PageWatch, walk: Walk) -> None:
    bph, older, other = (
        walk.patient_links["bph m3"],
        walk.patient_links["older-adults m6"],
        walk.patient_links["bph baseline"],
    )
    pages: Pages = [
        ("start", f"/r/{bph}"),
        ("first page", f"/r/{bph}/1"),
        ("experience page", f"/r/{bph}/8"),
        ("review", f"/r/{bph}/review"),
        ("opt-out", f"/r/{bph}/opt-out"),
        ("older adults start", f"/r/{older}"),
        ("older adults services page", f"/r/{older}/8"),
        ("not valid", "/r/tama-linkki-ei-ole-voimassa-lainkaan"),
    ]
    findings = walk_pages(browser, watch, walk.server, "patient", pages)
    # The thank-you and the already-answered pages, after sending.
    enrolment = _enrolment_of(walk, other)
    walk.server.submit_answers(enrolment, "baseline", _bph_baseline_answers())
    more = walk_pages(
        browser,
        watch,
        walk.server,
        "patient",
        [("already answered", f"/r/{other}")],
        fresh=False,
    )
    findings.problems += more.problems
    findings.checked += more.checked
    findings.assert_clean()


def _enrolment_of(walk: Walk, token: str) -> int:
    from vaikuttavuus.services import patient_flow

    with walk.server.app.app_context():
        state = patient_flow.resolve(db.session, token)
        assert state.invitation is not None
        return int(state.invitation.enrolment_id)


def _bph_baseline_answers() -> dict[str, str]:
    ipss = {f"ipss{n}": "2" for n in range(1, 8)}
    return {**ipss, "ipss_qol": "3", "mo": "1", "sc": "1", "ua": "2", "pd": "2", "ad": "1",
            "vas": "70"}  # fmt: skip


def test_clinician(browser: Browser, watch: PageWatch, walk: Walk) -> None:
    pages: Pages = [
        ("patient list", "/clinician/bph/"),
        ("patient page", f"/clinician/bph/{walk.bph_patient}"),
        ("measurements", f"/measurements/bph/{walk.bph_patient}"),
        ("older adult's page", f"/clinician/older-adults/{walk.older_patient}"),
        ("answer entry", f"/assisted/bph/{walk.invitation}/"),
        ("answer entry, first page", f"/assisted/bph/{walk.invitation}/1"),
        ("password", "/auth/password"),
    ]
    walk_pages(browser, watch, walk.server, "clinician", pages).assert_clean()


def test_pilot_lead(browser: Browser, watch: PageWatch, walk: Walk) -> None:
    pages: Pages = [
        ("cohort", "/pilot/bph/"),
        ("cohort outcomes", "/pilot/bph/?section=outcomes"),
        ("cohort costs", "/pilot/bph/?section=costs"),
        ("cohort cost-effectiveness", "/pilot/bph/?section=cea"),
        ("cohort funnel plots", "/pilot/bph/?section=funnel"),
        ("older adults services", "/pilot/older-adults/?section=services"),
        ("invitations", "/invitations/bph/"),
        ("invitation", f"/invitations/bph/{walk.invitation}"),
        ("cancel an invitation", f"/invitations/bph/{walk.invitation}/cancel"),
        ("imports", "/imports/bph/"),
        ("costs", "/costs/bph/"),
        ("exports", "/exports/bph/"),
        ("product catalogue", "/catalogue/"),
    ]
    walk_pages(browser, watch, walk.server, "pilot_lead", pages).assert_clean()


def test_management(browser: Browser, watch: PageWatch, walk: Walk) -> None:
    pages: Pages = [
        ("summary bph", "/management/?pilot=bph"),
        ("summary older adults", "/management/?pilot=older-adults"),
    ]
    walk_pages(browser, watch, walk.server, "management", pages).assert_clean()


def test_administrator(browser: Browser, watch: PageWatch, walk: Walk) -> None:
    pages: Pages = [
        ("users", "/admin/users"),
        ("user", f"/admin/users/{walk.user_id}"),
        ("audit log", "/admin/audit"),
        ("product catalogue", "/catalogue/"),
    ]
    walk_pages(browser, watch, walk.server, "admin", pages).assert_clean()


def test_the_checks_find_what_they_are_for(browser: Browser) -> None:
    """The language, overflow and target checks can fail (axe's own is tested elsewhere)."""
    context = browser.new_context(viewport=WIDTHS["phone"])
    try:
        page = context.new_page()
        page.set_content(
            "<html lang='fi'><head><title>Sivu</title></head><body><main>"
            "<p>the comparison needs both arms (no arm filter)</p>"
            "<p>63 person(s) puuttuu</p><p>Kovariaatti baseline_ucla3_total</p>"
            "<p>Avoin kysely: m12</p><p>Cancel the invitation</p>"
            "<p lang='en'>English is fine where it is marked</p>"
            "<div style='width:600px'>leveä</div>"
            "<button style='height:20px;width:20px'>x</button>"
            "</main></body></html>"
        )
        language = "\n".join(untranslated_texts(page, "fi"))
        for expected in (
            "English words",
            "the English plural",
            "internal code: 'Kovariaatti",
            "internal code: 'Avoin kysely: m12'",
            "an English message of the catalogue: 'Cancel the invitation'",
        ):
            assert expected in language, (expected, language)
        assert "marked" not in language
        assert overflow(page, 390, tables_must_fit=True)
        assert any("target button" in p for p in small_targets(page))
    finally:
        context.close()
