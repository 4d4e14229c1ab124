"""The Finnish and Swedish catalogues translate every UI string of the source, correctly.

The messages are extracted from the source exactly as ``pybabel extract`` does (the method map
of ``babel.cfg`` and the keywords of the README command: Babel's defaults plus ``_l``), and
compared with ``messages.pot`` and the ``fi`` and ``sv`` catalogues. Each translation must keep
the placeholders (``%(name)s``, ``%s``, ``{name}``) and HTML tags of its msgid, must format
the way the running code formats it (Jinja templates always apply ``%``, so a literal percent
sign there is written ``%%``), and the catalogues must pass Babel's own checks, which is what
``pybabel compile`` enforces.

When a test fails after source strings have changed, run the command in the README
("Development"), translate the new and fuzzy entries in ``fi`` and ``sv``, and compile.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "vaikuttavuus" / "translations"
TRANSLATED = ("fi", "sv")
ALL_LANGUAGES = ("fi", "sv", "en")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None}

NAMED = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]")
BRACES = re.compile(r"\{[A-Za-z_][\w.]*\}|\{\d*\}")
TAG = re.compile(r"</?[A-Za-z][^<>]*>")

Key = tuple[str | tuple[str, ...], str | None]


def _key(message: Message) -> Key:
    return (message.id, message.context)


def _show(key: Key) -> str:
    msgid, context = key
    text = msgid[0] if isinstance(msgid, tuple) else msgid
    return repr(text) + (f" (context {context!r})" if context else "")


@cache
def source_catalog() -> Catalog:
    """The messages in the source, built like ``pybabel extract -F babel.cfg -k _l``."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, filename=str(ROOT / "babel.cfg"))
    catalog = Catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


@cache
def load(name: str) -> Catalog:
    path = (
        TRANSLATIONS / "messages.pot"
        if name == "pot"
        else TRANSLATIONS / name / "LC_MESSAGES" / "messages.po"
    )
    with path.open("rb") as handle:
        return read_po(handle, locale=None if name == "pot" else name)


def _messages(catalog: Catalog) -> dict[Key, Message]:
    return {_key(m): m for m in catalog if m.id}


def _strings(message: Message) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs to compare: singular with msgstr[0], plural with the others."""
    if isinstance(message.id, tuple):
        strings = message.string if isinstance(message.string, tuple | list) else ()
        return [
            (message.id[0] if index == 0 else message.id[1], text)
            for index, text in enumerate(strings)
        ]
    return [(message.id, message.string or "")]


def _is_translated(message: Message) -> bool:
    string = message.string
    if isinstance(string, tuple | list):
        return bool(string) and all(string)
    return bool(string)


def _from_template(key: Key) -> bool:
    message = source_catalog().get(*key)
    return message is not None and any(str(f).endswith(".html") for f, _ in message.locations)


def test_extraction_finds_the_ui_strings() -> None:
    """Guards the guard: if extraction silently found nothing, every other test would pass."""
    found = _messages(source_catalog())
    assert len(found) > 300
    assert ("Time point", None) in found
    assert any(isinstance(msgid, tuple) for msgid, _ in found), "ngettext strings not extracted"
    assert any(_from_template(key) for key in found), "Jinja templates not extracted"


def test_messages_pot_is_up_to_date_with_the_source() -> None:
    source = set(_messages(source_catalog()))
    template = set(_messages(load("pot")))
    missing = sorted(map(_show, source - template))
    stale = sorted(map(_show, template - source))
    assert not missing and not stale, (
        "messages.pot is out of date; re-run the extract and update command in the README.\n"
        f"In the source but not in messages.pot ({len(missing)}):\n  "
        + "\n  ".join(missing)
        + f"\nIn messages.pot but no longer in the source ({len(stale)}):\n  "
        + "\n  ".join(stale)
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_source_string_is_translated(language: str) -> None:
    catalog = _messages(load(language))
    problems = []
    for key in sorted(_messages(source_catalog()), key=_show):
        message = catalog.get(key)
        if message is None:
            problems.append(f"not in the catalogue: {_show(key)}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {_show(key)}")
        elif not _is_translated(message):
            problems.append(f"untranslated: {_show(key)}")
    assert not problems, (
        f"{len(problems)} messages lack a {language} translation:\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_plural_forms(language: str) -> None:
    catalog = load(language)
    wrong = [
        _show(_key(m))
        for m in catalog
        if m.id
        and isinstance(m.id, tuple)
        and _is_translated(m)
        and len(m.string) != catalog.num_plurals
    ]
    assert catalog.num_plurals == 2
    assert not wrong, f"wrong number of plural forms in {language}: {wrong}"


@pytest.mark.parametrize("language", ALL_LANGUAGES)
def test_placeholders_and_markup_match_the_msgid(language: str) -> None:
    problems = []
    for message in load(language):
        if not message.id or message.fuzzy or not _is_translated(message):
            continue
        key = _key(message)
        for msgid, msgstr in _strings(message):
            if not msgstr:
                continue
            where = f"{_show(key)} → {msgstr!r}"
            if Counter(NAMED.findall(msgid)) != Counter(NAMED.findall(msgstr)):
                problems.append(f"named placeholders differ: {where}")
            if Counter(BRACES.findall(msgid)) != Counter(BRACES.findall(msgstr)):
                problems.append(f"{{}} placeholders differ: {where}")
            if Counter(TAG.findall(msgid)) != Counter(TAG.findall(msgstr)):
                problems.append(f"HTML tags differ: {where}")
            formatted = (
                _from_template(key)
                or "%%" in msgid
                or bool(NAMED.search(msgid))
                or isinstance(message.id, tuple)
            )
            if formatted:
                names = dict.fromkeys([*NAMED.findall(msgid), "num"], 1)
                try:
                    msgstr % names
                except (ValueError, TypeError, KeyError) as error:
                    problems.append(f"does not format ({error}): {where}")
    assert not problems, f"{len(problems)} problems in {language}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("language", ALL_LANGUAGES)
def test_catalogue_passes_babels_compile_checks(language: str) -> None:
    """What ``pybabel compile`` reports as errors (python-format and plural checks)."""
    catalog = load(language)
    errors = [
        f"{_show(_key(message))}: {'; '.join(map(str, found))}"
        for message, found in catalog.check()
    ]
    assert not errors, f"{language}: " + "\n  ".join(errors)
