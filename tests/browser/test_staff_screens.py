"""Staff screens in the browser: the clinician's patient page (with its chart) and the pilot
lead's cohort overview, as screenshots on a desktop and a phone, audited with axe-core.

The cohort: eleven BPH patients (six operating room, five outpatient clinic) who answered the
baseline and 3-month questionnaires through the patient-flow service, so that every cell of the
overview reaches the minimum cell size and the clinician's chart has two time points.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import (
    PHONE,
    STAFF_PASSWORD,
    ContextFactory,
    LiveServer,
    Screenshots,
)
from tests.browser.support import PageAudit, small_targets

pytestmark = pytest.mark.browser

EQ5D = {"mo": "1", "sc": "1", "ua": "2", "pd": "2", "ad": "1", "vas": "75"}


def _ipss(level: int) -> dict[str, str]:
    """IPSS answers whose symptom items are all ``level`` (total 7 × level)."""
    items = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7"]
    return {**{item: str(level) for item in items}, "ipss_qol": str(min(level + 1, 6))}


@dataclass(frozen=True)
class Cohort:
    pseudonym: str


@pytest.fixture(scope="module")
def cohort(live_server: LiveServer) -> Cohort:
    pseudonyms = []
    for n in range(11):
        arm = "operating_room" if n < 6 else "outpatient_clinic"
        enrolment_id = live_server.enrol("bph", arm=arm, index_offset_days=-95)
        live_server.submit_answers(enrolment_id, "baseline", {**_ipss(3 + n % 3), **EQ5D})
        live_server.submit_answers(
            enrolment_id, "m3", {**_ipss(1 + n % 2), **EQ5D, "overall": "2", "recommend": "9"}
        )
        pseudonyms.append(live_server.person_state(enrolment_id)["pseudonym"])
    for username, role in (("kliinikko-selain", "clinician"), ("pilotti-selain", "pilot_lead")):
        live_server.create_user(username, role)
    return Cohort(pseudonym=pseudonyms[0])


def _log_in(live_server: LiveServer, context: BrowserContext, username: str) -> Page:
    page = context.new_page()
    page.goto(live_server.url("/auth/login"))
    page.get_by_label("Käyttäjätunnus").fill(username)
    page.get_by_label("Salasana").fill(STAFF_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Kirjaudu sisään").click()
    expect(page.get_by_role("button", name="Kirjaudu ulos")).to_be_visible()
    return page


# Staff pages must have no known violations either (static/js/staff.js makes the scrolling
# table regions focusable and named).
STAFF_KNOWN_VIOLATIONS: frozenset[str] = frozenset()


@pytest.fixture
def staff_audit(shoot: Screenshots) -> Iterator[PageAudit]:
    yield PageAudit(shoot, known=STAFF_KNOWN_VIOLATIONS)


# Standalone links that once were smaller than 44×44 px (the audit's touch-target rule); the
# page audits below check every target, test_staff_links_are_large_enough_to_tap these by name.
SMALL_LINKS = (
    "Numbers as CSV",  # the caption link of every cohort table (_analytics.html)
    "Clinical measurements: add or correct",  # clinician/patient.html
    "All values with their corrections",
)


def _small_link_problems(live_server: LiveServer, problems: list[str]) -> list[str]:
    """The problems about the known small links (their Finnish texts)."""
    with live_server.app.test_request_context(), force_locale("fi"):
        texts = [str(gettext(message)) for message in SMALL_LINKS]
    return [p for p in problems if any(f'target a "{text}"' in p for text in texts)]


def test_clinician_patient_page(
    live_server: LiveServer,
    cohort: Cohort,
    new_context: ContextFactory,
    staff_audit: PageAudit,
) -> None:
    page = _log_in(live_server, new_context(phone=False), "kliinikko-selain")
    page.goto(live_server.url(f"/clinician/bph/{cohort.pseudonym}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(cohort.pseudonym)
    chart = page.locator("img.chart").first
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("alt", re.compile(r"\w"))
    assert (chart.bounding_box() or {}).get("width", 0) > 200
    staff_audit.check(page, "clinician patient page, desktop")
    page.set_viewport_size(PHONE)
    staff_audit.check(
        page, "clinician patient page, phone", same_page_as=("clinician patient page, desktop")
    )
    staff_audit.assert_clean()


def test_pilot_overview(
    live_server: LiveServer,
    cohort: Cohort,
    new_context: ContextFactory,
    staff_audit: PageAudit,
) -> None:
    page = _log_in(live_server, new_context(phone=False), "pilotti-selain")
    page.goto(live_server.url("/pilot/bph/"))
    expect(page.locator("img.chart")).to_be_visible()
    expect(page.locator("table").first).to_be_visible()
    staff_audit.check(page, "pilot overview, desktop")
    page.set_viewport_size(PHONE)
    staff_audit.check(page, "pilot overview, phone", same_page_as="pilot overview, desktop")
    staff_audit.assert_clean()


def test_staff_links_are_large_enough_to_tap(
    live_server: LiveServer, cohort: Cohort, new_context: ContextFactory
) -> None:
    page = _log_in(live_server, new_context(phone=False), "pilotti-selain")
    page.goto(live_server.url("/pilot/bph/"))
    problems = small_targets(page)
    page = _log_in(live_server, new_context(phone=False), "kliinikko-selain")
    page.goto(live_server.url(f"/clinician/bph/{cohort.pseudonym}"))
    problems += small_targets(page)
    assert _small_link_problems(live_server, problems) == []
