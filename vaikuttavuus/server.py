"""Running the app under gunicorn (``vaikuttavuus serve``)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from vaikuttavuus.domain.identity import mask_identity_codes

if TYPE_CHECKING:
    from gunicorn.glogging import _AtomsDict  # the stubs' type of the log atoms

# A personal link is a credential: access logs show "/r/…" instead of its token, and every
# other segment after /r/ that is not a page of the link (a number, review, submit …).
_PATIENT_TOKEN = re.compile(r"(/r/)[^/?#\s\"]+")
_LINK_PATH = re.compile(r"(/r/)([^?#\s\"]*)")
_LINK_PAGES = frozenset({"review", "submit", "thanks", "opt-out"})
# Anything shaped like a token (22 or more URL-safe characters: 128 bits and up) anywhere in
# a URL, however it got there.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{22,}")
# Query strings hold what people typed (searches, filters): the access log shows the path only.
_QUERY = re.compile(r"\?[^\s\"#]*")
# Atoms that are a whole query string, and atoms that hold a URL (the request line, referrer).
_QUERY_ATOMS = frozenset({"q", "{query_string}e"})
_URL_ATOMS = frozenset({"r", "f", "{referer}i", "{raw_uri}e", "{request_uri}e", "{http_referer}e"})


def redact(text: Any) -> Any:
    """A log text without link tokens or identity codes (other values pass through)."""
    if not isinstance(text, str):
        return text
    return mask_identity_codes(_PATIENT_TOKEN.sub(r"\1…", text))


def _link_pages_only(match: re.Match[str]) -> str:
    segments = match.group(2).split("/")
    shown = [
        part if position and (part.isdigit() or part in _LINK_PAGES) else ("…" if part else "")
        for position, part in enumerate(segments)
    ]
    return match.group(1) + "/".join(shown)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def redact_url(text: Any) -> Any:
    """A URL or request line for the access log with no link token, however the path is
    written: percent-encodings are decoded first (``/r%2F<token>``, ``/%72/<token>``, twice
    encoded …); when that reveals something to mask, the decoded and masked form is logged
    (control characters escaped), otherwise the line as it came."""
    if not isinstance(text, str):
        return text
    decoded = text
    for _ in range(3):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    masked = _TOKEN_LIKE.sub("…", _LINK_PATH.sub(_link_pages_only, decoded))
    if masked == decoded:
        return redact(text)
    return redact(_printable(masked) if decoded != text else masked)


def without_query(text: Any) -> Any:
    """A URL or request line with its query string left out."""
    return _QUERY.sub("", text) if isinstance(text, str) else text


class _RedactingFilter(logging.Filter):
    """Masks link tokens and identity codes in every record of gunicorn's own log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingLogger(Logger):
    """gunicorn's logger for personal data: the access log shows paths without query strings,
    ``/r/…`` instead of link tokens, and identity codes masked; the error log is masked too."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not any(isinstance(f, _RedactingFilter) for f in self.error_log.filters):
            self.error_log.addFilter(_RedactingFilter())  # setup runs again on a reload (HUP)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> _AtomsDict:
        atoms: Mapping[str, Any] = super().atoms(resp, req, environ, request_time)
        cleaned: dict[str, Any] = {}
        for key, value in atoms.items():
            if key in _QUERY_ATOMS:
                shown = ""
            elif key in _URL_ATOMS or key == "U":
                shown = redact_url(without_query(value))
            else:
                shown = value
            cleaned[key] = redact(shown)
        return cast("_AtomsDict", cleaned)  # the same atoms, redacted


LONG_REQUEST_SECONDS = 0.5
"""After a request that ran this long, a worker returns the memory it freed to the system."""
TRIM_INTERVAL_SECONDS = 30.0
"""... and after any request, when it last did so this long ago."""
MALLOC_ARENAS = 2
"""glibc malloc arenas per worker (its default is 8 per core for a threaded process)."""
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        import ctypes

        function: Callable[..., int] = getattr(ctypes.CDLL("libc.so.6"), name)
        return function
    except (OSError, AttributeError):
        return None  # not glibc


_MALLOC_TRIM = _libc_function("malloc_trim")
_MALLOPT = _libc_function("mallopt")
_LAST_TRIM = [time.monotonic()]
"""When this worker last returned freed memory (a list: threads share it; a race is harmless)."""


def _limit_malloc_arenas(_server: Any, _worker: Any) -> None:
    """In each worker, before its threads start: at most :data:`MALLOC_ARENAS` malloc arenas.
    Every thread of a threaded worker otherwise gets arenas of its own, and freed memory
    scattered over many arenas is neither reused by the other threads nor returned: the
    worker's RSS creeps up although its Python heap stays flat (``tracemalloc`` in the
    one-hour soak)."""
    if _MALLOPT is not None:
        _MALLOPT(_M_ARENA_MAX, MALLOC_ARENAS)


def _note_start(_worker: Any, request: Any) -> None:
    request.vaikuttavuus_started = time.monotonic()


def _return_freed_memory(_worker: Any, request: Any, _environ: Any, _response: Any) -> None:
    """Long requests (a cohort analysis, a PDF) build large temporary frames; glibc keeps the
    freed memory in the worker's heap, so its RSS would follow its highest peak so far and creep
    up with each new peak. ``malloc_trim`` hands it back (a few milliseconds, after the
    response has been sent): after a long request, and otherwise every
    :data:`TRIM_INTERVAL_SECONDS` (many short requests fragment the heap too)."""
    if _MALLOC_TRIM is None:
        return
    now = time.monotonic()
    started = getattr(request, "vaikuttavuus_started", None)
    long_request = started is not None and now - started >= LONG_REQUEST_SECONDS
    if long_request or now - _LAST_TRIM[0] >= TRIM_INTERVAL_SECONDS:
        _LAST_TRIM[0] = now
        _MALLOC_TRIM(0)


def _vaikuttavuus_app() -> Any:
    from vaikuttavuus.wsgi import app

    return app


def hide_server_header() -> None:
    """gunicorn names itself in a ``Server`` header of every response; leave it out (it tells
    a scanner which exploits to try, and tells a user nothing). Idempotent."""
    from gunicorn.http import wsgi

    original = wsgi.Response.default_headers
    if getattr(original, "without_server", False):
        return

    def default_headers(self: Any) -> list[str]:
        return [line for line in original(self) if not line.lower().startswith("server:")]

    default_headers.without_server = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = default_headers  # type: ignore[method-assign]  # on purpose


class GunicornApplication(BaseApplication):
    """gunicorn serving the WSGI app that ``load_app`` returns (default: this app), with no
    ``Server`` header."""

    def __init__(
        self, options: dict[str, Any], load_app: Callable[[], Any] = _vaikuttavuus_app
    ) -> None:
        self.options = options
        self.load_app = load_app
        hide_server_header()
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.load_app()


def gunicorn_options(*, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "forwarded_allow_ips": "127.0.0.1",
        "logger_class": RedactingLogger,
        "post_fork": _limit_malloc_arenas,
        "pre_request": _note_start,
        "post_request": _return_freed_memory,
    }


def run_gunicorn(*, host: str, port: int, workers: int, threads: int) -> None:
    options = gunicorn_options(host=host, port=port, workers=workers, threads=threads)
    GunicornApplication(options).run()
