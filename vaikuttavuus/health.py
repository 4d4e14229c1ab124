"""Dependencies that can be down, and what the app does then.

* :func:`is_outage` tells an unavailable dependency (the database unreachable or restarting,
  SQLite locked beyond its busy timeout, the disk failing) from a programming error. Requests
  that hit one answer **503** with ``Retry-After`` and a page in the user's language saying to
  try again in a minute (patients: answers already saved are kept), never a 500
  (:func:`vaikuttavuus.web.init_app` registers the handler). The app needs no restart: the
  connection pool checks connections before use (PostgreSQL) and replaces broken ones.
* ``/healthz`` (:mod:`vaikuttavuus.views.main`) runs every registered check
  (:func:`register_check`): today the database; the job queue of a later release registers its
  own (``register_check("job_queue", ping)``), and its outages then get the same 503 by
  raising :class:`DependencyUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import exc, text

Check = Callable[[], None]
"""A check returns when the dependency works and raises when it does not."""

_CHECKS: dict[str, Check] = {}

_SQLITE_OUTAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
)
"""SQLite errors of the environment (locks held too long, the file or disk), as opposed to
SQL errors, which SQLite also reports as ``OperationalError``."""


class DependencyUnavailableError(RuntimeError):
    """A dependency (e.g. the job queue) cannot be reached; the request answers 503."""

    def __init__(self, dependency: str, message: str = "") -> None:
        super().__init__(f"{dependency} unavailable{': ' + message if message else ''}")
        self.dependency = dependency


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means a dependency is unavailable (so: 503, try again later)."""
    if isinstance(error, DependencyUnavailableError):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):
        return True  # no pooled connection in time; a connection lost
    if isinstance(error, exc.OperationalError | exc.InterfaceError):
        module = type(error.orig).__module__ if error.orig is not None else ""
        if module.startswith("sqlite3"):
            message = str(error.orig).lower()
            return any(part in message for part in _SQLITE_OUTAGES)
        return True  # the PostgreSQL driver's connection and server-state errors
    return False


def outage_summary(error: BaseException) -> str:
    """The error's class and the driver's first line (no SQL, no parameters)."""
    original = getattr(error, "orig", None) or error
    first_line = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {first_line}"[:300]


def register_check(name: str, check: Check) -> None:
    """Add (or replace) a dependency check of ``/healthz``."""
    _CHECKS[name] = check


def database_check() -> None:
    """The database answers a trivial query on a fresh checkout from the pool."""
    from vaikuttavuus.extensions import db

    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1")).scalar()


register_check("database", database_check)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    milliseconds: float
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "status": "ok" if self.ok else "unavailable",
            "ms": round(self.milliseconds, 1),
        }
        if self.error:
            result["error"] = self.error
        return result


def run_checks() -> list[CheckResult]:
    """Every registered check, in registration order."""
    results = []
    for name, check in list(_CHECKS.items()):
        started = time.perf_counter()
        try:
            check()
        except Exception as error:
            elapsed = (time.perf_counter() - started) * 1000
            results.append(CheckResult(name, False, elapsed, outage_summary(error)))
        else:
            results.append(CheckResult(name, True, (time.perf_counter() - started) * 1000))
    return results
