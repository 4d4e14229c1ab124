"""How a spreadsheet could read a CSV file: split on any list separator, quotes or not.

A Finnish or Swedish spreadsheet splits a comma-separated file on ``;``; others split on ``,``
or tab, and a naive reader on line breaks. :func:`formula_fragments` splits on all of them and
returns every part that a spreadsheet would run as a formula (OWASP CSV injection): one that
starts, after spaces and an opening quote, with ``=``, ``+``, ``-``, ``@``, tab or carriage
return. Plain numbers (``-1.5``) are numbers, not formulas.
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r'-?\d+(\.\d+)?([eE][-+]?\d+)?"?')


def formula_fragments(text: str) -> list[str]:
    found = []
    for line in re.split(r"\r\n|\n", text):
        for part in re.split(r"[;,\t]", line):
            cell = part.lstrip(' "')
            if cell.startswith(FORMULA_START) and not _NUMBER.fullmatch(cell):
                found.append(part)
    return found
