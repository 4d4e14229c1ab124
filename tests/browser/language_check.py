"""Is a Finnish or Swedish page really in Finnish or Swedish? (issue 17's walkthrough guard)

Three looks at the text a user sees (text nodes and the ``title``, ``aria-label``, ``alt``,
``placeholder`` attributes of visible elements; nothing marked with another ``lang``, nothing in
``code``, nothing with ``translate="no"``):

* a text that is an English message of the catalogue whose translation differs (an untranslated
  ``_()`` or a text that bypassed the catalogue but matches one);
* an English sentence: two or more different English function words (``the``, ``and``, ``of``,
  …) that are not words of Finnish or Swedish, an English word that untranslated codes show
  alone (``visit``, ``minutes``, ``unknown``, …), or the English plural hedge ``(s)``;
* an internal code: a ``snake_case`` identifier or a raw time-point code (``baseline``, ``m12``),
  except inside an element marked ``data-codes`` (a page that documents the codes of a file,
  e.g. the import columns).

A text that is also the translation of some message (Swedish *Filter* is English *Filter* too)
is not English.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from playwright.sync_api import Page

TRANSLATIONS = Path(__file__).resolve().parents[2] / "vaikuttavuus" / "translations"

ENGLISH_WORDS = frozenset(
    {
        "the", "and", "of", "is", "are", "with", "to", "for", "from", "this", "that", "which",
        "was", "were", "has", "have", "not", "needs", "left", "out", "too", "few", "an",
        "been", "be", "by", "or", "no", "its", "their", "than", "when", "can", "could",
    }
)  # fmt: skip
# English words that are no words of Finnish or Swedish and that an untranslated code tends to
# show alone (a catalogue unit, a missing-value marker).
ENGLISH_ALONE = frozenset(
    {
        "visit", "visits", "contact", "contacts", "minute", "minutes", "hour", "hours", "day",
        "days", "week", "weeks", "month", "months", "year", "years", "unknown", "missing",
        "none", "mean", "other", "yes",
    }
)  # fmt: skip
WORD = re.compile(r"[A-Za-zÅÄÖåäöÉéŪū]+")
SNAKE_CASE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
TIME_POINT_CODE = re.compile(r"\b(?:baseline|m\d{1,2})\b")
PLURAL_HEDGE = re.compile(r"\w\(s\)")
# Texts that are the same in every language (proper nouns, codes, units) and may therefore
# equal an English msgid.
ALLOWED = frozenset({"PDF", "CSV", "XLSX", "FHIR", "JSON", "OK"})

VISIBLE_TEXTS = """() => {
  const out = [];
  const skip = (el) => {
    if (!el) { return false; }
    if (el.closest('code, kbd, pre, script, style, template, [translate="no"]')) { return true; }
    const marked = el.closest('[lang]');
    return marked && marked.getAttribute('lang') !== document.documentElement.lang;
  };
  // Shown: laid out, not hidden, not inside a closed <details>.
  const shown = (el) => el && el.getClientRects().length > 0
    && el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true});
  const codes = (el) => Boolean(el && el.closest('[data-codes]'));
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    const el = node.parentElement;
    if (!text || skip(el)) { continue; }
    const hidden = el.closest('.visually-hidden');
    if (!(shown(el) || (hidden && shown(hidden.parentElement)))) { continue; }
    out.push({text, codes: codes(el)});
  }
  for (const el of document.querySelectorAll('[title], [aria-label], img[alt], [placeholder]')) {
    if (skip(el)) { continue; }
    for (const name of ['title', 'aria-label', 'alt', 'placeholder']) {
      const value = (el.getAttribute(name) || '').trim();
      if (value) { out.push({text: value, codes: codes(el)}); }
    }
  }
  out.push({text: document.title, codes: false});
  return out;
}"""


@cache
def english_messages(language: str) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """The catalogue's English messages whose ``language`` translation differs (and that are
    no translation themselves): exact texts, and patterns for the ones with placeholders (at
    least two words besides them)."""
    path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    translations = {
        " ".join(text.split())
        for message in catalog
        if message.id
        for text in (message.string if isinstance(message.string, tuple) else (message.string,))
        if text
    }
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            if msgid in strings or msgid in ALLOWED:
                continue
            text = " ".join(msgid.split())
            if "%" not in text and "{" not in text:
                if WORD.search(text) and not text.isupper() and text not in translations:
                    exact.add(text)
                continue
            parts = re.split(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]|%[sd]|\{\w*\}", text)
            literal = " ".join(parts)
            if len(WORD.findall(literal)) >= 3:
                patterns.append(re.compile("^" + ".+?".join(map(re.escape, parts)) + "$"))
    return frozenset(exact), tuple(patterns)


def _english_alone(text: str) -> list[str]:
    """English words of ``ENGLISH_ALONE`` written as words (``visit``, ``Minutes``), not as
    parts of an upper-case code (``URO_VISIT_FIRST``)."""
    found = set()
    for word in WORD.findall(text):
        candidate = word if word.islower() else word.lower() if word.istitle() else None
        if candidate in ENGLISH_ALONE:
            found.add(candidate)
    return sorted(found)


def problems_in_texts(
    texts: list[str], language: str, codes: frozenset[str] = frozenset()
) -> list[str]:
    """``texts`` that are not in ``language``; ``codes`` are texts where codes belong."""
    exact, patterns = english_messages(language)
    found: list[str] = []
    for text in dict.fromkeys(texts):  # each text once, in page order
        reason = None
        if text in exact:
            reason = "an English message of the catalogue"
        elif any(pattern.match(text) for pattern in patterns):
            reason = "an English message of the catalogue (with values)"
        else:
            words = {w.lower() for w in WORD.findall(text)}
            english = words & ENGLISH_WORDS
            if len(english) >= 2:
                reason = f"English words {sorted(english)}"
            elif alone := _english_alone(text):
                reason = f"the English word(s) {alone}"
            elif PLURAL_HEDGE.search(text):
                reason = "the English plural '(s)'"
            elif text not in codes and (SNAKE_CASE.search(text) or TIME_POINT_CODE.search(text)):
                reason = "an internal code"
        if reason is not None:
            found.append(f"{reason}: {text[:160]!r}")
    return found


def untranslated_texts(page: Page, language: str) -> list[str]:
    """What on the page is not in ``language`` (fi or sv), one line per text."""
    texts: list[dict[str, Any]] = page.evaluate(VISIBLE_TEXTS)
    codes = frozenset(str(t["text"]) for t in texts if t["codes"])
    others = [str(t["text"]) for t in texts]
    return problems_in_texts(
        others, language, codes - {str(t["text"]) for t in texts if not t["codes"]}
    )
