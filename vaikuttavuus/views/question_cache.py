"""Rendered question blocks of patient pages, kept per process.

The questions of a page are the largest part of its rendering, and they depend only on the
instrument version, the section, the language, the answers already given on the page and
which items are hidden: for a first visit (no answers yet) every patient sees the same block.
It is rendered once per such combination and reused; pages with error messages are always
rendered afresh. Specs are immutable and live for the whole process (cached by content hash),
so the spec object itself is part of the key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from threading import Lock

from flask_babel import get_locale
from markupsafe import Markup

from vaikuttavuus.services.patient_flow import Step

MAX_ENTRIES = 2048
"""At most this many rendered blocks are kept (least recently used ones go first)."""

_Key = tuple[int, str, str, str, tuple[tuple[str, str], ...], frozenset[str]]
_blocks: OrderedDict[_Key, tuple[object, Markup]] = OrderedDict()
_lock = Lock()


def questions_html(
    step: Step,
    language: str,
    stored: Mapping[str, str],
    hidden_items: set[str],
    render: Callable[[], str],
) -> Markup:
    """The page's rendered questions (no errors shown), from the cache when possible;
    ``render`` renders the block afresh and is called only on a miss."""
    on_page = {item.id for item in step.section.items}
    key: _Key = (
        id(step.spec),
        step.section.id,
        language,
        str(get_locale()),
        tuple(sorted((k, v) for k, v in stored.items() if k in on_page)),
        frozenset(hidden_items),
    )
    with _lock:
        cached = _blocks.get(key)
        if cached is not None and cached[0] is step.spec:
            _blocks.move_to_end(key)
            return cached[1]
    html = Markup(render())
    with _lock:
        _blocks[key] = (step.spec, html)
        while len(_blocks) > MAX_ENTRIES:
            _blocks.popitem(last=False)
    return html


def clear() -> None:
    """Forget every rendered block (tests; a changed template in development)."""
    with _lock:
        _blocks.clear()
