"""WCAG 2.1 AA on every patient page: axe-core with zero violations, plus what axe cannot see.

axe-core (bundled by axe-playwright-python) is injected with Playwright's ``page.evaluate``,
which runs through the DevTools protocol and is not subject to the page's
Content-Security-Policy: the pages are audited with their real ``script-src 'self'`` policy
and no ``bypass_csp`` context. Each page is also checked for exactly one ``<h1>``, the
``<html lang>`` of its language, a title not shared with another page of the same journey,
no horizontal scrolling at 320 CSS px (WCAG 1.4.10) and touch targets of at least 44×44 px.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ContextFactory, LiveServer, PageWatch, Screenshots
from tests.browser.support import PageAudit, answer_page, follow_link, press_button

pytestmark = pytest.mark.browser


def _open(page: Page, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == status, f"{url}: HTTP {response.status}"


def _step_count(page: Page) -> int:
    return int(page.locator("progress").get_attribute("max") or 0)


def test_bph_baseline_journey_fi(live_server: LiveServer, page: Page, shoot: Screenshots) -> None:
    """Start, every step (one with validation errors), review, thanks, already answered."""
    audit = PageAudit(shoot)
    _, token = live_server.patient_link("bph", "baseline")
    _open(page, live_server.link_url(token))
    audit.check(page, "start")
    follow_link(page, "Aloita")
    audit.check(page, "step 1")
    press_button(page, "Seuraava")  # nothing answered: every required question is flagged
    expect(page.locator("#error-summary")).to_be_focused()
    audit.check(page, "step 1 with errors")
    total = _step_count(page)
    for number in range(1, total + 1):
        if number > 1:
            audit.check(page, f"step {number}")
        answer_page(page)
        press_button(page, "Seuraava" if number < total else "Tarkista vastaukset")
    audit.check(page, "review")
    press_button(page, "Lähetä vastaukset")
    audit.check(page, "thanks")
    _open(page, live_server.link_url(token))
    audit.check(page, "already answered")
    audit.assert_clean()


def test_bph_three_months_steps_fi(live_server: LiveServer, page: Page, shoot: Screenshots) -> None:
    """All eight pages of the 3-month time point (IPSS, EQ-5D-5L, PREM), dependent item shown."""
    audit = PageAudit(shoot)
    _, token = live_server.patient_link("bph", "m3")
    _open(page, live_server.link_url(token))
    audit.check(page, "start")
    _open(page, live_server.link_url(token, "/1"))
    total = _step_count(page)
    assert total == 8
    for number in range(1, total + 1):
        _open(page, live_server.link_url(token, f"/{number}"))
        audit.check(page, f"step {number}")
    # The PREM's follow-up question appears when the overall rating is poor.
    page.get_by_text("Huono", exact=True).click()
    expect(page.get_by_label("Mitä olisimme voineet tehdä paremmin?")).to_be_visible()
    audit.check(page, f"step {total} with the follow-up question", same_page_as=f"step {total}")
    audit.assert_clean()


def test_older_adults_baseline_steps_fi(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    audit = PageAudit(shoot)
    _, token = live_server.patient_link("older-adults", "baseline")
    _open(page, live_server.link_url(token))
    audit.check(page, "start")
    _open(page, live_server.link_url(token, "/1"))
    total = _step_count(page)
    assert total >= 4
    for number in range(1, total + 1):
        _open(page, live_server.link_url(token, f"/{number}"))
        audit.check(page, f"step {number}")
    press_button(page, "Tarkista vastaukset")
    audit.check(page, "review with unanswered questions")
    audit.assert_clean()


def test_link_problem_pages_fi(
    live_server: LiveServer, new_context: ContextFactory, shoot: Screenshots
) -> None:
    """Invalid, expired, not-open-yet links, the opt-out page and the opted-out page."""
    audit = PageAudit(shoot)
    page = new_context().new_page()
    _open(page, live_server.link_url("tama-linkki-ei-ole-oikea-" + "x" * 20), 404)
    audit.check(page, "invalid link")
    # An expired link looks exactly like an unknown one (same page, same title).
    expired = PageAudit()
    _, token = live_server.patient_link("bph", "baseline", index_offset_days=-30)
    _open(page, live_server.link_url(token), 404)
    expired.check(page, "expired link")
    expired.assert_clean()
    assert page.title() == audit.titles["invalid link"]

    _, token = live_server.patient_link("bph", "baseline", index_offset_days=100)
    _open(page, live_server.link_url(token))
    audit.check(page, "not open yet")

    _, token = live_server.patient_link("bph", "baseline")
    _open(page, live_server.link_url(token))
    follow_link(page, "En halua saada kyselyjä")
    audit.check(page, "opt-out")
    press_button(page, "Kyllä, en halua enää kyselyjä")
    audit.check(page, "opted out")
    audit.assert_clean()


@pytest.mark.parametrize("language", ["sv", "en"])
def test_pages_in_swedish_and_english(
    live_server: LiveServer, new_context: ContextFactory, shoot: Screenshots, language: str
) -> None:
    """Swedish on a phone, English on a desktop screen (1280×900)."""
    audit = PageAudit(shoot)
    page = new_context(phone=language == "sv").new_page()
    _, token = live_server.patient_link("bph", "m3")
    _open(page, live_server.link_url(token, f"?lang={language}"))
    audit.check(page, f"start {language}", language=language)
    _open(page, live_server.link_url(token, "/8"))
    audit.check(page, f"step 8 {language}", language=language)
    press_button(page, {"sv": "Granska svaren", "en": "Review answers"}[language])
    audit.check(page, f"review {language}", language=language)
    audit.assert_clean()


def test_large_text_mode(live_server: LiveServer, page: Page, shoot: Screenshots) -> None:
    audit = PageAudit(shoot)
    _, token = live_server.patient_link("bph", "m3")
    _open(page, live_server.link_url(token, "?text=large"))
    assert "text-large" in (page.locator("body").get_attribute("class") or "")
    audit.check(page, "start, large text")
    _open(page, live_server.link_url(token, "/1"))
    press_button(page, "Seuraava")
    audit.check(page, "step 1 with errors, large text")
    _open(page, live_server.link_url(token, "/8"))
    audit.check(page, "step 8, large text")
    audit.assert_clean()


def test_the_audit_finds_known_problems(page: Page) -> None:
    """The checks above can fail: a page with known faults is reported on every count."""
    page.set_content(
        "<html><head><title>x</title></head><body><main>"
        "<h1>One</h1><h1>Two</h1>"
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<p style="color:#bbb;background:#fff">faint text</p>'
        '<label>Name <input type="text"></label><input type="text">'
        '<div style="width:600px">wide</div>'
        '<button style="height:20px;width:20px">x</button>'
        "</main></body></html>"
    )
    audit = PageAudit()
    audit.check(page, "faulty page")
    report = "\n".join(audit.problems)
    for expected in (
        "image-alt",
        "color-contrast",
        "label",
        "html-has-lang",
        "expected one non-empty <h1>",
        "horizontal scroll",
        "target button",
    ):
        assert expected in report, f"{expected!r} not reported:\n{report}"


_CHROME_TEXTS = """() => ({
  'page title (after the dash)': document.title.split(' – ').pop(),
  'skip link': document.querySelector('.skip-link')?.textContent.trim(),
  'header': document.querySelector('header .brand')?.textContent.trim(),
  'language menu name': document.querySelector('nav.languages')?.getAttribute('aria-label'),
  'text-size link': document.querySelector('.text-toggle')?.textContent.trim(),
  'footer': document.querySelector('footer')?.textContent.trim(),
})"""


def test_the_page_frame_speaks_the_page_language(live_server: LiveServer, page: Page) -> None:
    """WCAG 3.1.2 (language of parts): the header, footer, title and menu names of a Finnish
    or Swedish page are not left in English (axe cannot tell; the texts are compared with the
    English page's)."""
    _, token = live_server.patient_link("bph", "baseline")
    texts = {}
    for language in ("en", "fi", "sv"):
        _open(page, live_server.link_url(token, f"?lang={language}"))
        texts[language] = page.evaluate(_CHROME_TEXTS)
    english = texts["en"]
    untranslated = [
        f"{language}: {part} is {english[part]!r}"
        for language in ("fi", "sv")
        for part, text in texts[language].items()
        if text == english[part]
    ]
    assert not untranslated, "English left on other-language pages:\n" + "\n".join(untranslated)


def test_the_browser_watch_reports_csp_refusals_and_script_errors(browser: Browser) -> None:
    """The watch every test runs under (see ``new_context``) catches what it is there for."""
    watch = PageWatch()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        page.set_content(
            "<html><head><meta http-equiv='Content-Security-Policy' "
            "content=\"style-src 'self'; script-src 'self'\"></head>"
            "<body><p style='color:red'>inline style</p></body></html>"
        )
        page.evaluate("setTimeout(() => { throw new Error('broken page script'); }, 0)")
        page.wait_for_timeout(200)
    finally:
        context.close()
    report = "\n".join(watch.problems())
    assert "Content Security Policy" in report
    assert "broken page script" in report
