"""Page numbers from the query string, clamped so that no value can break a query.

``?page=99999999999999999999`` is a valid Python int but overflows the database's 64-bit
``OFFSET`` (an ``OverflowError`` in the driver, i.e. a 500). Every listing reads its page
number through :func:`page_number` instead of ``request.args.get("page", type=int)``.
"""

from __future__ import annotations

from flask import request

MAX_PAGE = 1_000_000
"""The largest page number a listing accepts; larger numbers are read as this one."""


def clamp_page(value: int | None, pages: int | None = None) -> int:
    """``value`` within 1 … ``MAX_PAGE`` (and within 1 … ``pages`` when the count is known);
    ``None`` or 0 reads as 1."""
    page = min(max(value or 1, 1), MAX_PAGE)
    if pages is not None:
        page = min(page, max(pages, 1))
    return page


def page_number(name: str = "page") -> int:
    """The 1-based page number in the query parameter ``name``, clamped to 1 … ``MAX_PAGE``;
    a missing or non-numeric value reads as 1."""
    return clamp_page(request.args.get(name, 1, type=int))
