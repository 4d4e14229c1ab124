"""Helpers for the browser tests: answer a page like a person would, and run axe-core."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

# The success criteria axe-core checks for WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
NUMBER_ANSWER = "70"


def choice_index(item_id: str, options: int) -> int:
    """A deterministic, varied option for an item (not always the first one)."""
    return sum(map(ord, item_id)) % options


def answer_page(
    page: Page,
    choose: Mapping[str, int] | None = None,
    *,
    pick: Callable[[str, int], int] = choice_index,
    texts: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Answer every visible question on the current page; returns item id → value chosen.

    Choices are made by clicking the option's label (as a person taps the text), numbers and
    free text are typed. ``choose`` fixes the option index of some items; the others get
    ``pick(item_id, number_of_options)``. Free-text items are left empty unless in ``texts``.
    """
    choose = choose or {}
    texts = texts or {}
    chosen: dict[str, str] = {}
    # One look at the page for the questions shown and their kind, then one action each.
    questions: list[dict[str, Any]] = page.evaluate(
        """() => [...document.querySelectorAll('form.questionnaire .question')]
          .filter((q) => !q.hidden && q.getClientRects().length)
          .map((q) => ({
            id: q.id.replace(/^q-/, ''),
            options: q.querySelectorAll('input[type=radio], input[type=checkbox]').length,
            number: Boolean(q.querySelector('input.number')),
            text: Boolean(q.querySelector('textarea')),
          }))"""
    )
    for question in questions:
        item_id = question["id"]
        block = page.locator(f"#q-{item_id}")
        if question["options"]:
            n = choose.get(item_id, pick(item_id, question["options"]))
            chosen[item_id] = click_option(block, n)
        elif question["number"]:
            block.locator("input.number").fill(texts.get(item_id, NUMBER_ANSWER))
            chosen[item_id] = texts.get(item_id, NUMBER_ANSWER)
        elif question["text"] and item_id in texts:
            block.locator("textarea").fill(texts[item_id])
            chosen[item_id] = texts[item_id]
    return chosen


def click_option(question: Locator, index: int) -> str:
    """Tap the label of option ``index`` of a choice question; returns the option's value."""
    label = question.locator("label:has(input)").nth(index)
    label.click()
    control = label.locator("input")
    expect(control).to_be_checked()
    return control.get_attribute("value") or ""


def press_button(page: Page, name: str) -> None:
    """Press a button by its accessible name and wait for the next page to load (the first
    one: the review page has its send button above and below the answers)."""
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).first.click()


def follow_link(page: Page, name: str) -> None:
    """Follow a link by its accessible name and wait for the next page to load, so that what
    comes next acts on that page, not on the one being left."""
    with page.expect_navigation():
        page.get_by_role("link", name=name, exact=True).click()


def checked_values(page: Page) -> dict[str, str]:
    """The checked radio values and filled inputs of the form on the current page."""
    values: dict[str, str] = page.evaluate(
        """() => {
          const out = {};
          document.querySelectorAll('form.questionnaire input, form.questionnaire textarea')
            .forEach((el) => {
              if (el.type === 'hidden' || el.type === 'submit') { return; }
              if ((el.type === 'radio' || el.type === 'checkbox')) {
                if (el.checked) { out[el.name] = el.value; }
              } else if (el.value) { out[el.name] = el.value; }
            });
          return out;
        }"""
    )
    return values


# -- axe-core ----------------------------------------------------------------------------------

_AXE = Axe()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is now.

    axe is injected with ``page.evaluate`` (the DevTools protocol's Runtime.evaluate), which
    the page's Content-Security-Policy (``script-src 'self'``) does not govern: no CSP bypass
    is needed and the page under test runs with its real policy.
    """
    results = _AXE.run(
        page,
        options={"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]},
    )
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {json.dumps(node['target'])}: {node.get('failureSummary', '')}")
    return "\n".join(lines)


@dataclass
class PageAudit:
    """Accessibility findings over several pages, reported together at the end of a test."""

    shoot: Callable[[Page, str], Any] | None = None
    # axe rule ids known to fail on pages whose templates belong to someone else: reported in
    # ``known_found`` instead of failing, and a failure when they no longer occur (so that the
    # entry is removed once the template is fixed).
    known: frozenset[str] = frozenset()
    known_found: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)

    def check(
        self, page: Page, label: str, *, language: str = "fi", same_page_as: str | None = None
    ) -> None:
        """axe (WCAG A/AA), one h1, the page language, 320 px reflow and target sizes.

        ``same_page_as`` names an earlier check of the same page in another state (e.g. with
        a dependent question shown): its title is expected to be the same, not a new one.
        """
        self.checked.append(label)
        if self.shoot is not None:
            self.shoot(page, label)
        violations = axe_violations(page)
        self.known_found.update(v["id"] for v in violations if v["id"] in self.known)
        violations = [v for v in violations if v["id"] not in self.known]
        if violations:
            self.problems.append(f"{label} ({page.url}): axe\n{describe_violations(violations)}")
        headings = page.locator("h1").all_inner_texts()
        if len(headings) != 1 or not headings[0].strip():
            self.problems.append(f"{label}: expected one non-empty <h1>, found {headings}")
        lang = page.locator("html").get_attribute("lang")
        if lang != language:
            self.problems.append(f"{label}: <html lang> is {lang!r}, expected {language!r}")
        title = page.title()
        if same_page_as is not None:
            if self.titles.get(same_page_as) != title:
                self.problems.append(f"{label}: title {title!r} differs from {same_page_as}")
        elif title in self.titles.values():
            other = next(k for k, v in self.titles.items() if v == title)
            self.problems.append(f"{label}: the title {title!r} is also the title of {other}")
        self.titles[label] = title
        self.problems.extend(f"{label}: {p}" for p in reflow_problems(page))
        self.problems.extend(f"{label}: {p}" for p in small_targets(page))

    def assert_clean(self) -> None:
        assert self.checked, "no page was checked"
        fixed = self.known - self.known_found
        assert not fixed, f"known violations no longer found (remove them from the list): {fixed}"
        assert not self.problems, (
            f"accessibility problems on {len(self.checked)} pages:\n" + "\n".join(self.problems)
        )


def reflow_problems(page: Page, width: int = 320) -> list[str]:
    """WCAG 1.4.10: at 320 CSS px nothing may need horizontal scrolling."""
    original = page.viewport_size
    page.set_viewport_size({"width": width, "height": 720})
    try:
        overflow: dict[str, Any] = page.evaluate(
            """(width) => {
              const doc = document.documentElement;
              const wide = [...document.querySelectorAll('body *')]
                .filter((el) => el.getClientRects().length
                                && (el.getBoundingClientRect().right > width + 0.5
                                    || (el.scrollWidth > el.clientWidth + 1
                                        && getComputedStyle(el).overflowX === 'visible')))
                .filter((el) => !el.closest('.table-wrap'))
                .slice(0, 5)
                .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                             + (el.className ? '.' + String(el.className).replace(/ /g, '.') : '')
                             + ' right=' + Math.round(el.getBoundingClientRect().right));
              return {scroll: doc.scrollWidth, wide};
            }""",
            width,
        )
    finally:
        if original is not None:
            page.set_viewport_size(original)
    if overflow["scroll"] > width:
        return [
            f"horizontal scroll at {width} px (scrollWidth {overflow['scroll']}): "
            f"{overflow['wide']}"
        ]
    return []


def small_targets(page: Page, minimum: float = 44) -> list[str]:
    """Touch targets under 44×44 CSS px: buttons, standalone links, options and fields.

    Links inside running text are exempt (as in WCAG 2.5.8); the skip link is checked when
    it is shown (on focus) by the keyboard test.
    """
    found: list[str] = page.evaluate(
        """(minimum) => {
          const selector = 'main a, header a:not(.skip-link), button, label.option,'
            + ' label.scale-option, textarea, select,'
            + ' input:not([type=hidden]):not([type=radio]):not([type=checkbox])';
          return [...document.querySelectorAll(selector)]
            .filter((el) => el.getClientRects().length && !el.closest('[hidden]'))
            .filter((el) => !(el.tagName === 'A' && el.closest('p, li, dd')
                              && el.parentElement.textContent.trim() !== el.textContent.trim()))
            .map((el) => [el, el.getBoundingClientRect()])
            .filter(([el, box]) => box.height < minimum - 0.5 || box.width < minimum - 0.5)
            .map(([el, box]) => `target ${el.tagName.toLowerCase()} "${
                (el.textContent || el.name || '').trim().slice(0, 40)}" is `
                + `${Math.round(box.width)}×${Math.round(box.height)} px`);
        }""",
        minimum,
    )
    return found


# -- walking the questionnaire -----------------------------------------------------------------

NEXT = {"fi": "Seuraava", "sv": "Nästa", "en": "Next"}
REVIEW = {"fi": "Tarkista vastaukset", "sv": "Granska svaren", "en": "Review answers"}
PREVIOUS = {"fi": "Edellinen", "sv": "Föregående", "en": "Previous"}


def progress(page: Page) -> tuple[int, int]:
    """(this page, number of pages) from the progress bar."""
    bar = page.locator("progress")
    return int(bar.get_attribute("value") or 0), int(bar.get_attribute("max") or 0)


def walk_to_review(
    page: Page,
    shoot: Callable[[Page, str], Any] | None = None,
    *,
    language: str = "fi",
    choose: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """From the current step page, answer every page and press on until the review page."""
    chosen: dict[str, str] = {}
    while True:
        number, total = progress(page)
        chosen.update(answer_page(page, choose))
        if shoot is not None:
            shoot(page, f"step {number} of {total}")
        last = number == total
        press_button(page, REVIEW[language] if last else NEXT[language])
        if last:
            expect(page).to_have_url(re.compile(r"/review"))
            if shoot is not None:
                shoot(page, "review")
            return chosen
