"""The patient's questionnaire in a real browser (Debian's Chromium), on a phone-sized screen.

Answers are given as a person gives them: by tapping the option texts (labels), typing
numbers and pressing the page's buttons; the stored result is then read from the database.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import ContextFactory, LiveServer, Screenshots
from tests.browser.support import (
    NEXT,
    PREVIOUS,
    answer_page,
    checked_values,
    click_option,
    follow_link,
    press_button,
    progress,
    walk_to_review,
)

pytestmark = pytest.mark.browser

BPH_BASELINE_INSTRUMENTS = ["ipss", "eq5d5l"]
IPSS = {f"ipss{n}": str(n % 6) for n in range(1, 8)} | {"ipss_qol": "3"}
EQ5D = {"mo": "1", "sc": "2", "ua": "3", "pd": "2", "ad": "1", "vas": "65"}


def _answered_link(live_server: LiveServer, **answers: str) -> tuple[int, str, dict[str, str]]:
    """A BPH baseline link whose answers (all of them by default) are already saved, as if
    given on the pages earlier; nothing is sent yet."""
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    given = answers or IPSS | EQ5D
    live_server.submit_answers(enrolment_id, "baseline", given, submit=False)
    return enrolment_id, token, given


def _answers(live_server: LiveServer, enrolment_id: int) -> dict[str, str]:
    merged: dict[str, str] = {}
    for response in live_server.responses(enrolment_id):
        merged.update(response.answers)
    return merged


def test_whole_flow_in_finnish_on_a_phone(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    response = page.goto(live_server.link_url(token))
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Eturauhasen hyvänlaatuisen liikakasvun toimenpiteet"
    )
    expect(page.get_by_text("Kyselyssä on 6 lyhyttä sivua.", exact=False)).to_be_visible()
    shoot(page, "start")

    follow_link(page, "Aloita")
    expect(page.get_by_text("Sivu 1/6")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Sivu 1/6: Virtsarakon tyhjeneminen"))
    expected = walk_to_review(page, shoot)
    assert set(expected) == {
        "ipss1",
        "ipss2",
        "ipss3",
        "ipss4",
        "ipss5",
        "ipss6",
        "ipss7",
        "ipss_qol",
        "mo",
        "sc",
        "ua",
        "pd",
        "ad",
        "vas",
    }
    expect(page.get_by_role("heading", level=1)).to_have_text("Tarkista vastauksesi")

    # Change an answer from the review page: the page opens with the stored answers, and its
    # main button leads back to the review.
    # (Chromium names the link "…vastauksia : Virtsarakon…": the hidden part is a box of its own.)
    with page.expect_navigation():
        page.get_by_role(
            "link", name=re.compile(r"Muuta tämän sivun vastauksia\s*: Virtsarakon tyhjeneminen")
        ).click()
    assert progress(page) == (1, 6)
    assert checked_values(page) == {k: expected[k] for k in ("ipss1", "ipss2", "ipss3")}
    question = page.locator("#q-ipss2")
    new_index = (int(expected["ipss2"]) + 2) % 6
    expected["ipss2"] = click_option(question, new_index)
    new_text = question.locator("label.option").nth(new_index).inner_text().strip()
    shoot(page, "changing an answer")
    press_button(page, "Tarkista vastaukset")
    expect(page).to_have_url(re.compile(r"/review"))
    first_section = page.locator("section.review-section").first
    expect(first_section.locator("dd").nth(1)).to_have_text(new_text)
    shoot(page, "review after the change")

    press_button(page, "Lähetä vastaukset")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kiitos!")
    shoot(page, "thanks")

    stored = live_server.responses(enrolment_id)
    assert [r.instrument for r in stored] == BPH_BASELINE_INSTRUMENTS
    assert {(r.status, r.mode, r.language, r.time_point) for r in stored} == {
        ("submitted", "web", "fi", "baseline")
    }
    assert _answers(live_server, enrolment_id) == expected


def test_double_click_on_send_stores_one_response(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    """The page script lets one request through; the server stores one response anyway."""
    enrolment_id, token, expected = _answered_link(live_server)
    page.goto(live_server.link_url(token, "/review"))
    shoot(page, "review")
    sends: list[Request] = []
    page.on("request", lambda r: sends.append(r) if r.url.endswith("/submit") else None)
    page.get_by_role("button", name="Lähetä vastaukset").first.dblclick()
    expect(page.get_by_role("heading", level=1)).to_have_text("Kiitos!")
    shoot(page, "thanks after a double click")
    assert len(sends) == 1
    assert live_server.count_responses(enrolment_id) == len(BPH_BASELINE_INSTRUMENTS)
    assert {r.status for r in live_server.responses(enrolment_id)} == {"submitted"}
    assert _answers(live_server, enrolment_id) == expected


def test_sending_again_from_a_stale_page_stores_nothing_more(
    live_server: LiveServer, new_context: ContextFactory, shoot: Screenshots
) -> None:
    """The review page open in two tabs (or a retry after a timeout): the second send of
    the same answers reaches the server and is answered with the thank-you page."""
    enrolment_id, token, expected = _answered_link(live_server)
    context = new_context()
    first = context.new_page()
    first.goto(live_server.link_url(token, "/review"))
    second = context.new_page()
    second.goto(live_server.link_url(token, "/review"))
    press_button(first, "Lähetä vastaukset")
    expect(first.get_by_role("heading", level=1)).to_have_text("Kiitos!")
    with second.expect_response(re.compile(r"/submit$")) as resent:
        press_button(second, "Lähetä vastaukset")
    assert resent.value.status == 302
    expect(second.get_by_role("heading", level=1)).to_have_text("Kiitos!")
    shoot(second, "thanks after sending again")
    assert live_server.count_responses(enrolment_id) == len(BPH_BASELINE_INSTRUMENTS)
    assert _answers(live_server, enrolment_id) == expected


def test_back_button_after_sending_shows_already_answered(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    enrolment_id, token, _ = _answered_link(
        live_server, **IPSS, **{k: v for k, v in EQ5D.items() if k != "vas"}
    )
    page.goto(live_server.link_url(token, "/6"))  # the last page, answered here
    walk_to_review(page, shoot)
    press_button(page, "Lähetä vastaukset")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kiitos!")
    shoot(page, "thanks")

    page.go_back()  # the review page
    expect(page.get_by_role("heading", level=1)).to_have_text("Olet jo vastannut")
    expect(page.get_by_role("button", name="Lähetä vastaukset")).to_have_count(0)
    shoot(page, "back after sending")
    page.go_back()  # the last step page
    expect(page.get_by_role("heading", level=1)).to_have_text("Olet jo vastannut")
    expect(page).to_have_url(re.compile(r"/6$"))
    expect(page.locator("form.questionnaire")).to_have_count(0)
    assert live_server.count_responses(enrolment_id) == len(BPH_BASELINE_INSTRUMENTS)


def test_language_switch_mid_flow_keeps_answers(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    page.goto(live_server.link_url(token, "/1"))
    expected = answer_page(page)
    press_button(page, NEXT["fi"])

    # Page 2: answers chosen but not sent yet survive the switch to Swedish.
    unsent = answer_page(page)
    with page.expect_navigation():
        page.get_by_role("link", name="svenska").click()
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_role("heading", level=1)).to_have_text("Trängningar och urinstråle")
    assert checked_values(page) == unsent
    shoot(page, "page 2 in Swedish")
    expected.update(unsent)
    press_button(page, NEXT["sv"])

    # Page 3 in Swedish, then English; back to the earlier pages: the answers are there.
    expected.update(answer_page(page))
    with page.expect_navigation():
        page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Urinating at night")
    shoot(page, "page 3 in English")
    press_button(page, PREVIOUS["en"])
    assert progress(page) == (2, 6)
    assert checked_values(page) == {k: expected[k] for k in ("ipss4", "ipss5", "ipss6")}
    press_button(page, PREVIOUS["en"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Emptying the bladder")
    assert checked_values(page) == {k: expected[k] for k in ("ipss1", "ipss2", "ipss3")}

    press_button(page, NEXT["en"])
    press_button(page, NEXT["en"])
    expected.update(walk_to_review(page, shoot, language="en"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Review your answers")
    press_button(page, "Send answers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")
    assert _answers(live_server, enrolment_id) == expected
    assert live_server.person_state(enrolment_id)["preferred_language"] == "en"
    assert {r.language for r in live_server.responses(enrolment_id)} == {"en"}


def test_large_text_mode(live_server: LiveServer, page: Page, shoot: Screenshots) -> None:
    _, token = live_server.patient_link("bph", "baseline")
    page.goto(live_server.link_url(token, "/1"))
    body = page.locator("body")
    normal = _font_size(page)
    unsent = answer_page(page)
    with page.expect_navigation():
        page.locator("a.text-toggle").click()
    expect(body).to_have_class(re.compile(r"\btext-large\b"))
    assert _font_size(page) >= normal * 1.25
    assert checked_values(page) == unsent  # the answers not yet sent are kept
    shoot(page, "large text")
    press_button(page, NEXT["fi"])
    expect(body).to_have_class(re.compile(r"\btext-large\b"))  # remembered on the next page
    option = page.locator("label.option").first
    box = option.bounding_box()
    assert box is not None and box.get("height", 0) >= 44 * 1.2
    with page.expect_navigation():
        page.locator("a.text-toggle").click()
    expect(body).to_have_class(re.compile(r"\btext-normal\b"))
    assert _font_size(page) == normal


def _font_size(page: Page) -> float:
    return float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))


def test_resume_on_another_device(
    live_server: LiveServer, new_context: ContextFactory, shoot: Screenshots
) -> None:
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    phone = new_context().new_page()
    phone.goto(live_server.link_url(token))
    follow_link(phone, "Aloita")
    expected = answer_page(phone)
    press_button(phone, NEXT["fi"])
    expected.update(answer_page(phone))
    press_button(phone, NEXT["fi"])
    assert progress(phone) == (3, 6)
    phone.context.close()

    computer = new_context(phone=False).new_page()
    computer.goto(live_server.link_url(token))
    shoot(computer, "start on another device")
    follow_link(computer, "Jatka vastaamista")
    assert progress(computer) == (3, 6)
    press_button(computer, PREVIOUS["fi"])
    press_button(computer, PREVIOUS["fi"])
    assert checked_values(computer) == {k: expected[k] for k in ("ipss1", "ipss2", "ipss3")}
    shoot(computer, "page 1 on another device")
    press_button(computer, NEXT["fi"])
    press_button(computer, NEXT["fi"])
    expected.update(walk_to_review(computer, shoot))
    press_button(computer, "Lähetä vastaukset")
    expect(computer.get_by_role("heading", level=1)).to_have_text("Kiitos!")
    assert _answers(live_server, enrolment_id) == expected
    assert live_server.count_responses(enrolment_id) == len(BPH_BASELINE_INSTRUMENTS)


def test_dependent_question_follows_the_answer(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    """BPH PREM at 3 months: "what could we have done better" only after a poor rating."""
    enrolment_id, token = live_server.patient_link("bph", "m3")
    page.goto(live_server.link_url(token, "/8"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Kokonaisuus")
    follow_up = page.get_by_label("Mitä olisimme voineet tehdä paremmin?")
    expect(follow_up).to_be_hidden()
    overall = page.locator("#q-overall")
    click_option(overall, 3)  # Huono (poor)
    expect(follow_up).to_be_visible()
    follow_up.fill("Odotusaika oli pitkä.")
    shoot(page, "follow-up shown")
    click_option(overall, 1)  # Hyvä (good)
    expect(follow_up).to_be_hidden()
    click_option(overall, 4)  # Erittäin huono (very poor)
    expect(follow_up).to_be_visible()
    expect(follow_up).to_have_value("Odotusaika oli pitkä.")
    press_button(page, "Tarkista vastaukset")
    review = page.locator("section.review-section").last
    expect(review).to_contain_text("Odotusaika oli pitkä.")
    prem = next(r for r in live_server.responses(enrolment_id) if r.instrument == "prem_bph")
    assert prem.answers == {"overall": "5", "improve": "Odotusaika oli pitkä."}

    # A better rating from the review page removes the follow-up answer.
    review.get_by_role("link", name=re.compile("Muuta tämän sivun vastauksia")).click()
    expect(follow_up).to_be_visible()
    click_option(page.locator("#q-overall"), 0)  # Erittäin hyvä (very good)
    expect(follow_up).to_be_hidden()
    shoot(page, "follow-up hidden")
    press_button(page, "Tarkista vastaukset")
    expect(page.locator("section.review-section").last).not_to_contain_text("Odotusaika")
    prem = next(r for r in live_server.responses(enrolment_id) if r.instrument == "prem_bph")
    assert prem.answers == {"overall": "1"}


def test_keyboard_only_page(
    live_server: LiveServer, new_context: ContextFactory, shoot: Screenshots
) -> None:
    """One page with the keyboard alone: Tab to each question, Space/arrows, Enter to send.

    Every element that receives focus shows a visible focus indicator.
    """
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    page = new_context(phone=False).new_page()
    page.goto(live_server.link_url(token, "/1"))

    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["height"] >= 44  # shown on focus
    _assert_focus_visible(page)

    chosen: dict[str, str] = {}
    for item, presses in (("ipss1", 0), ("ipss2", 2), ("ipss3", 5)):
        _tab_to(page, f"input[name={item}]")
        _assert_focus_visible(page)
        page.keyboard.press("Space")
        for _ in range(presses):
            page.keyboard.press("ArrowDown")
        _assert_focus_visible(page)
        chosen[item] = str(page.evaluate("document.activeElement.value"))
        assert page.evaluate("document.activeElement.checked") is True
    shoot(page, "answered with the keyboard")
    assert chosen == {"ipss1": "0", "ipss2": "2", "ipss3": "5"}
    _tab_to(page, "button[value=next]")
    _assert_focus_visible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert progress(page) == (2, 6)
    ipss = next(r for r in live_server.responses(enrolment_id) if r.instrument == "ipss")
    assert ipss.answers == chosen


def _tab_to(page: Page, selector: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _assert_focus_visible(page: Page) -> None:
    style = page.evaluate(
        """() => {
          const s = getComputedStyle(document.activeElement);
          return {outline: s.outlineStyle, width: parseFloat(s.outlineWidth),
                  shadow: s.boxShadow, tag: document.activeElement.outerHTML.slice(0, 80)};
        }"""
    )
    assert (style["outline"] != "none" and style["width"] >= 2) or style["shadow"] != "none", style


def test_error_summary_takes_focus_and_leads_to_the_question(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    page.goto(live_server.link_url(token, "/1"))
    first = answer_page(page, {"ipss1": 2})
    page.locator("#q-ipss2 input:checked").evaluate("el => el.checked = false")
    page.locator("#q-ipss3 input:checked").evaluate("el => el.checked = false")
    with page.expect_response(re.compile(r"/1$")) as sent:
        page.get_by_role("button", name="Seuraava").click()
    assert sent.value.status == 422
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Virhe: Sivu 1/6"))
    links = summary.get_by_role("link")
    expect(links).to_have_count(2)
    expect(links.first).to_contain_text("Vastaa tähän kysymykseen.")
    expect(links.first).to_contain_text("sinun on täytynyt virtsata uudelleen")
    shoot(page, "errors")
    # The answer given is kept; the questions without one are marked and described.
    assert checked_values(page) == {"ipss1": first["ipss1"]}
    fieldset = page.locator("#q-ipss3 fieldset")
    expect(fieldset).to_have_attribute("aria-describedby", "ipss3-error")
    expect(page.locator("#ipss3-error")).to_have_text("Virhe: Vastaa tähän kysymykseen.")
    links.nth(1).click()
    expect(page.locator("#ipss3-0")).to_be_focused()
    expect(page.locator("#q-ipss3 legend")).to_be_in_viewport()
    ipss = next(r for r in live_server.responses(enrolment_id) if r.instrument == "ipss")
    assert ipss.answers == {"ipss1": first["ipss1"]}

    # A number out of range: the field is marked invalid and described by hint and error.
    page.goto(live_server.link_url(token, "/6"))
    field = page.get_by_label("[EQ VAS – lisensoitu teksti korvataan]")
    expect(field).to_have_attribute("inputmode", "numeric")
    expect(page.locator("form.questionnaire")).to_have_attribute("autocomplete", "off")
    field.fill("200")
    press_button(page, "Tarkista vastaukset")
    expect(page.locator("#error-summary")).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "vas-hint vas-error")
    expect(page.locator("#vas-error")).to_have_text("Virhe: Anna arvo väliltä 0–100.")
    expect(field).to_have_value("200")  # what was typed stays there to be corrected
    shoot(page, "number out of range")
    page.locator("#error-summary a").click()
    expect(field).to_be_focused()


def test_unknown_and_expired_links_look_alike(
    live_server: LiveServer, page: Page, shoot: Screenshots
) -> None:
    unknown = page.goto(live_server.link_url("x" * 43))
    assert unknown is not None and unknown.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Linkki ei ole voimassa")
    shoot(page, "unknown link")
    unknown_text = page.locator("main").inner_text()

    _, token = live_server.patient_link("bph", "baseline", index_offset_days=-30)
    expired = page.goto(live_server.link_url(token))
    assert expired is not None and expired.status == 404
    assert page.locator("main").inner_text() == unknown_text
    shoot(page, "expired link")

    _, token = live_server.patient_link("bph", "baseline", index_offset_days=100)
    page.goto(live_server.link_url(token))
    expect(page.get_by_role("heading", level=1)).to_have_text("Kysely ei ole vielä avoinna")
    shoot(page, "not open yet")


def test_opt_out(live_server: LiveServer, page: Page, shoot: Screenshots) -> None:
    enrolment_id, token = live_server.patient_link("bph", "baseline")
    page.goto(live_server.link_url(token))
    follow_link(page, "En halua saada kyselyjä")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kyselyistä kieltäytyminen")
    shoot(page, "opt-out")
    page.get_by_role("link", name="Takaisin kyselyyn").click()  # changed their mind
    expect(page.get_by_role("link", name="Aloita")).to_be_visible()
    assert live_server.person_state(enrolment_id)["opted_out"] is False

    follow_link(page, "En halua saada kyselyjä")
    press_button(page, "Kyllä, en halua enää kyselyjä")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sinulle ei lähetetä enää kyselyjä")
    shoot(page, "opted out")
    state = live_server.person_state(enrolment_id)
    assert state["opted_out"] is True
    assert set(state["invitation_statuses"]) == {"opted_out"}
    page.goto(live_server.link_url(token))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sinulle ei lähetetä enää kyselyjä")


def test_pages_work_without_javascript(
    live_server: LiveServer, new_context: ContextFactory, shoot: Screenshots
) -> None:
    """Without the page script the follow-up question is simply shown; the server still
    stores it only when its condition holds."""
    enrolment_id, token = live_server.patient_link("bph", "m3")
    page = new_context(java_script_enabled=False).new_page()
    page.goto(live_server.link_url(token, "/8"))
    follow_up = page.get_by_label("Mitä olisimme voineet tehdä paremmin?")
    expect(follow_up).to_be_visible()
    click_option(page.locator("#q-overall"), 1)  # Hyvä (good): the follow-up does not apply
    follow_up.fill("Ei mitään.")
    shoot(page, "without javascript")
    press_button(page, "Tarkista vastaukset")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tarkista vastauksesi")
    prem = next(r for r in live_server.responses(enrolment_id) if r.instrument == "prem_bph")
    assert prem.answers == {"overall": "2"}
