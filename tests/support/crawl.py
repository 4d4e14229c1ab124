"""A small crawler for the security tests: pages, links and forms of the running test app.

Routes come from the app's URL map (so routes added later are covered without editing the
tests), filled in with sample values, plus every same-site link found on the pages. Forms are
parsed with the standard library's HTML parser.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

# Paths that are not pages (downloads are fetched where a test asks for them).
DOWNLOAD_SUFFIXES = (".pdf", ".csv", ".json", ".xlsx", ".zip", ".png", ".svg")
# Query parameters that only switch the language or the text size: one variant is enough.
PRESENTATION_PARAMETERS = frozenset({"lang", "text", "lang_pdf"})
INPUT_TYPES_WITHOUT_TEXT = frozenset({"hidden", "submit", "button", "image", "reset"})


@dataclass
class FormField:
    name: str
    kind: str  # input type, "textarea" or "select"
    value: str = ""
    options: list[str] = field(default_factory=list)
    checked: bool = False
    multiple: bool = False


@dataclass
class HtmlForm:
    page: str
    method: str
    action: str
    fields: list[FormField] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submits
    enctype: str = "application/x-www-form-urlencoded"

    @property
    def token_field(self) -> str | None:
        names = {f.name for f in self.fields}
        for candidate in ("csrf_token", "form_token"):
            if candidate in names:
                return candidate
        return None

    @property
    def user_fields(self) -> list[FormField]:
        """Fields a person fills in (not hidden, not buttons)."""
        return [f for f in self.fields if f.kind not in INPUT_TYPES_WITHOUT_TEXT]

    def values(self) -> dict[str, Any]:
        """The values the browser would send as the page stands (checked boxes, first option)."""
        data: dict[str, list[str]] = {}
        for f in self.fields:
            if f.kind in {"submit", "button", "image", "reset"}:
                continue
            if f.kind in {"checkbox", "radio"}:
                if f.checked:
                    data.setdefault(f.name, []).append(f.value or "on")
                continue
            if f.kind == "select":
                if f.options and not f.multiple:
                    data.setdefault(f.name, []).append(f.value or f.options[0])
                continue
            if f.kind == "file":
                continue
            data.setdefault(f.name, []).append(f.value)
        if self.buttons:
            name, value = self.buttons[0]
            if name:
                data.setdefault(name, []).append(value)
        return {k: v if len(v) > 1 else v[0] for k, v in data.items()}

    def target(self) -> str:
        return urljoin(self.page, self.action or self.page)


@dataclass
class ParsedPage:
    url: str
    forms: list[HtmlForm] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    inline_problems: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage(url)
        self._form: HtmlForm | None = None
        self._select: FormField | None = None
        self._textarea: FormField | None = None
        self._script_has_src = True
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        for name, value in a.items():
            if name.startswith("on"):
                self.page.inline_problems.append(f"<{tag} {name}=…> event handler attribute")
            if name == "style":
                self.page.inline_problems.append(f"<{tag} style=…> inline style")
            if name in {"href", "src", "action", "formaction"} and value.strip().lower().startswith(
                "javascript:"
            ):
                self.page.inline_problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "style":
            self.page.inline_problems.append("<style> element")
        if tag == "script":
            self._in_script = True
            self._script_has_src = bool(a.get("src"))
            if not self._script_has_src and a.get("type", "") not in {"application/json"}:
                self.page.inline_problems.append("inline <script>")
        if tag == "a" and a.get("href"):
            self.page.links.append(urljoin(self.page.url, a["href"]))
        if tag == "form":
            self._form = HtmlForm(
                page=self.page.url,
                method=(a.get("method") or "get").lower(),
                action=a.get("action", ""),
                enctype=a.get("enctype") or "application/x-www-form-urlencoded",
            )
            self.page.forms.append(self._form)
        if self._form is None:
            return
        if tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in {"submit", "image"}:
                self._form.buttons.append((a["name"], a.get("value", "")))
                return
            self._form.fields.append(
                FormField(a["name"], kind, a.get("value", ""), checked="checked" in a)
            )
        elif tag == "button":
            if (a.get("type") or "submit").lower() == "submit":
                self._form.buttons.append((a.get("name", ""), a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = FormField(a["name"], "textarea")
            self._form.fields.append(self._textarea)
        elif tag == "select" and a.get("name"):
            self._select = FormField(a["name"], "select", multiple="multiple" in a)
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select.options.append(value)
            if "selected" in a:
                self._select.value = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data


def parse_page(url: str, html: str) -> ParsedPage:
    parser = _PageParser(url)
    parser.feed(html)
    parser.close()
    return parser.page


# -- routes and crawling ------------------------------------------------------------------------


def route_url(rule: Rule, values: dict[str, Any]) -> str:
    """A path for ``rule`` with sample values (integers for ``int`` parameters)."""
    arguments: dict[str, Any] = {name: values.get(name, "1") for name in rule.arguments}
    for name, converter in rule._converters.items():  # werkzeug has no public API for this
        if type(converter).__name__ in {"IntegerConverter", "BoundedIntegerConverter"}:
            given = values.get(name)
            arguments[name] = given if isinstance(given, int) else 1
    built = rule.build(arguments, append_unknown=False)
    assert built is not None
    return built[1]


def get_routes(app: Flask) -> list[Rule]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and "GET" in (rule.methods or set())
    ]


def normalise(url: str) -> str | None:
    """The path and query to fetch, or None for other sites, static files and downloads."""
    parts = urlsplit(url)
    if parts.scheme not in {"", "http", "https"} or parts.netloc not in {"", "localhost"}:
        return None
    path = parts.path or "/"
    if path.startswith("/static/") or path.endswith(DOWNLOAD_SUFFIXES):
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in PRESENTATION_PARAMETERS]
    return path + ("?" + urlencode(sorted(query)) if query else "")


def is_html(response: TestResponse) -> bool:
    return response.mimetype == "text/html"


def endpoint_of(app: Flask, url: str, method: str = "GET") -> str:
    path = urlsplit(url).path
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, method=method)
    except HTTPException:
        return f"unrouted:{path}"
    return str(endpoint)


def crawl(
    client: FlaskClient,
    start: Iterable[str],
    *,
    max_pages: int = 150,
    per_endpoint: int = 1,
    skip: Callable[[str], bool] | None = None,
    before_fetch: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, TestResponse, ParsedPage | None]]:
    """Breadth-first GET of the start paths and every same-site link found (each path once,
    at most ``per_endpoint`` paths of one route: one patient's page stands for all)."""
    app = client.application
    queue = [u for u in (normalise(s) for s in start) if u]
    seen: set[str] = set()
    per_route: dict[str, int] = {}
    while queue and len(seen) < max_pages:
        url = queue.pop(0)
        if url in seen or (skip is not None and skip(url)):
            continue
        route = endpoint_of(app, url)
        if per_route.get(route, 0) >= per_endpoint:
            continue
        per_route[route] = per_route.get(route, 0) + 1
        seen.add(url)
        if before_fetch is not None:
            before_fetch(url)
        response = client.get(url)
        parsed = parse_page(url, response.get_data(as_text=True)) if is_html(response) else None
        yield url, response, parsed
        if parsed is not None:
            for link in parsed.links:
                target = normalise(link)
                if target and target not in seen:
                    queue.append(target)


def sample_urls(app: Flask, values: dict[str, Any]) -> list[str]:
    return [route_url(rule, values) for rule in get_routes(app)]


# -- database snapshots ----------------------------------------------------------------------


def snapshot(
    session: Session,
    *,
    skip_tables: frozenset[str] = frozenset({"audit_events"}),
    skip_column: Callable[[str, str], bool] | None = None,
) -> dict[str, str]:
    """A digest of every table's rows (volatile columns left out), to tell whether anything
    was stored. ``skip_column(table, column)`` leaves a column out."""
    bind = session.get_bind()
    names = sorted(inspect(bind).get_table_names())
    digests: dict[str, str] = {}
    for table in names:
        if table in skip_tables or table == "alembic_version":
            continue
        columns = [
            c["name"]
            for c in inspect(bind).get_columns(table)
            if not (skip_column and skip_column(table, c["name"]))
        ]
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = session.execute(text(f'SELECT {quoted} FROM "{table}"')).all()
        body = "\n".join(sorted(repr(tuple(row)) for row in rows))
        digests[table] = hashlib.sha256(body.encode()).hexdigest() + f":{len(rows)}"
    return digests


def volatile_column(table: str, column: str) -> bool:
    """Timestamps and counters that a page view may touch without storing anything."""
    return column.endswith("_at") or column in {"failed_logins", "preferred_language"}


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


def count_rows(session: Session, model: Any) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- headers ---------------------------------------------------------------------------------


def _csp(response: Any) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy", "")
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def security_header_problems(url: str, response: Any) -> list[str]:
    """Problems with the security headers and inline code of one HTML response."""
    problems = []
    csp = _csp(response)
    expected = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    for directive, values in expected.items():
        if csp.get(directive) != values:
            problems.append(f"{url}: CSP {directive} is {csp.get(directive)}")
    for directive, values in csp.items():
        if any(v in {"'unsafe-inline'", "'unsafe-eval'", "*"} for v in values):
            problems.append(f"{url}: CSP {directive} allows {values}")
    headers = {
        "X-Frame-Options": {"DENY"},
        "X-Content-Type-Options": {"nosniff"},
        # Never a referrer (URLs hold tokens and pseudonyms) to another site.
        "Referrer-Policy": {"no-referrer", "same-origin"},
    }
    for name, allowed in headers.items():
        if response.headers.get(name) not in allowed:
            problems.append(f"{url}: {name} is {response.headers.get(name)!r}")
    if "no-store" not in response.headers.get("Cache-Control", ""):
        problems.append(f"{url}: Cache-Control without no-store")
    if response.mimetype == "text/html":
        page = parse_page(url, response.get_data(as_text=True))
        problems.extend(f"{url}: {p}" for p in page.inline_problems)
    return problems


TOKEN_IN_PATH = re.compile(r"/r/([A-Za-z0-9_-]{16,})")
