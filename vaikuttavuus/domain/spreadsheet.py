"""Text cells for CSV files that people open in a spreadsheet (OWASP, "CSV injection").

Every CSV the tool writes — exports, cohort tables, the audit trail, import error reports, the
catalogue — passes its text cells through :func:`spreadsheet_safe`, the one place this rule
lives.

A spreadsheet runs a cell as a formula when it starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return. The CSV writer's quoting does not protect a value: a Finnish or Swedish
spreadsheet splits a comma-separated file on ``;`` (its list separator) whatever the quotes
say, so in ``x;=cmd|' /C calc'!A0`` the part after the ``;`` becomes a cell of its own. So a
``'`` goes in front of the value *and* in front of every part after a separator (``;``, ``,``,
tab or a line break) that would start a formula, also after spaces or a quote. The apostrophe
is what spreadsheets show as "text follows"; a program that reads the CSV sees it as part of
the text.

Stdlib only.
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_START", "SEPARATORS", "spreadsheet_safe"]

FORMULA_START: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""Characters that make a spreadsheet run a cell as a formula."""
SEPARATORS = ",;\t\r\n"
"""Characters a spreadsheet may split a line or a row on."""

_FIRST = frozenset(FORMULA_START)
# a separator (and spaces or quotes after it) followed by a formula character
_AFTER_SEPARATOR = re.compile(r"([,;\t\r\n][ \"]*)(?=[=+\-@\t\r])")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a ``'`` before its start and before each part after a separator that
    would start a formula (after spaces or quotes, which a spreadsheet skips); other text is
    returned unchanged."""
    if not text:
        return text
    safe = _AFTER_SEPARATOR.sub(r"\1'", text)
    first = safe[0]
    if first in _FIRST or (first in ' "' and safe.lstrip(' "')[:1] in _FIRST):
        return "'" + safe
    return safe
