"""The data change log: a pilot's data version that costs two index lookups.

Every committed transaction that changed a table the analyses read (people, enrolments,
answers, invitations, costs, clinical data, service use, imports) writes one row to
``data_changes`` in the same transaction, just before its COMMIT: for the pilot the change
was declared for, or for every pilot (``pilot_id`` NULL) when the code did not say. A pilot's
data version (:func:`latest_change`) is its newest row and the newest all-pilots row, so an
analysis snapshot can tell in microseconds whether it is current, at 200 000 people as at 20.

How writes are seen, without each write path having to remember it:

* every statement SQLAlchemy runs passes :func:`_after_statement`, which recognises an
  INSERT, UPDATE or DELETE of a tracked table that changed at least one row;
* the bulk loader, which writes through the driver (COPY), calls :func:`note_write`;
* the row is written by :func:`_before_commit` (the engine's ``commit`` event), through the
  driver, inside the transaction: a transaction that is rolled back leaves no row, and one
  that commits is never without its row.

Attribution is by scope: writes inside :func:`pilot_scope` change one pilot's data (a
patient's submit, an import into a pilot); writes inside :func:`analysis_neutral_scope`
change nothing an analysis reads (a draft answer, a delivery time); any other write counts
for every pilot, which is never wrong, only a refresh more than needed. The test suite
checks this against the full fingerprint (:func:`vaikuttavuus.queries.pilot_data_version`)
on every version it reads (``DATA_VERSION_AUDIT``).

On PostgreSQL the last step takes a transaction advisory lock, so the ids are handed out in
commit order: a snapshot sees a prefix of the log, and its newest row names what it saw.
SQLite serialises writers anyway.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, event, func, select

from vaikuttavuus.models.data_changes import DataChange

TRACKED_TABLES = frozenset(
    {
        "persons",
        "enrolments",
        "responses",
        "answers",
        "invitations",
        "cost_items",
        "clinical_measurements",
        "procedures",
        "service_exposures",
        "import_batches",
    }
)
"""The tables whose rows the analyses, pages and exports of a pilot read."""

EVERY_PILOT: None = None
_NEUTRAL = "analysis-neutral"
_SCOPES = "vaikuttavuus.change_scopes"
_PENDING = "vaikuttavuus.pending_changes"
_MIGRATING = "vaikuttavuus.migrating"
# An arbitrary constant key for PostgreSQL's advisory lock that orders the log's ids as the
# commits (distinct from the invitation refresh's key).
_LOG_LOCK_KEY = 0x76616B6C
_DML = re.compile(
    r"\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from)\s+\"?(\w+)", re.IGNORECASE
)


def note_write(connection: Connection, table: str) -> None:
    """Record that the connection's open transaction changed rows of ``table`` (for writes
    that bypass SQLAlchemy's statements, such as the bulk loader's COPY)."""
    if table not in TRACKED_TABLES or connection.info.get(_MIGRATING):
        return
    scopes: list[Any] = connection.info.get(_SCOPES) or []
    scope = scopes[-1] if scopes else EVERY_PILOT
    if scope == _NEUTRAL:
        return
    connection.info.setdefault(_PENDING, set()).add(scope)


@contextlib.contextmanager
def _scope(session: Any, scope: Any) -> Iterator[None]:
    session.flush()  # what was pending before belongs to the outer scope
    connection: Connection = session.connection()
    scopes: list[Any] = connection.info.setdefault(_SCOPES, [])
    scopes.append(scope)
    try:
        yield
        session.flush()  # ORM changes made inside are written inside
    finally:
        scopes.pop()


def pilot_scope(session: Any, pilot_id: int) -> contextlib.AbstractContextManager[None]:
    """Writes inside change only pilot ``pilot_id``'s data (the block's ORM changes are
    flushed when it ends)."""
    return _scope(session, int(pilot_id))


def analysis_neutral_scope(session: Any) -> contextlib.AbstractContextManager[None]:
    """Writes inside change nothing any analysis, page or export reads: a draft answer, a
    link's last use, a delivery time."""
    return _scope(session, _NEUTRAL)


@contextlib.contextmanager
def migrating(connection: Connection) -> Iterator[None]:
    """Schema migrations write no log rows (the log's table may not exist yet)."""
    connection.info[_MIGRATING] = True
    try:
        yield
    finally:
        connection.info.pop(_MIGRATING, None)
        connection.info.pop(_PENDING, None)


@event.listens_for(Engine, "after_cursor_execute")
def _after_statement(
    connection: Connection,
    cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    match = _DML.match(statement)
    if match is None or getattr(cursor, "rowcount", -1) == 0:
        return
    note_write(connection, match.group(1).lower())


@event.listens_for(Engine, "commit")
def _before_commit(connection: Connection) -> None:
    pending: set[Any] | None = connection.info.pop(_PENDING, None)
    if not pending:
        return
    pilots: list[int | None] = [EVERY_PILOT] if EVERY_PILOT in pending else sorted(pending)
    _write(connection, pilots)


@event.listens_for(Engine, "rollback")
def _after_rollback(connection: Connection) -> None:
    if connection.invalidated:
        # The database connection was lost (e.g. the server went away mid-statement): its
        # info, the pending writes included, goes with it, and touching it here would raise
        # instead of letting the rollback finish (the request's 503 became a 500).
        return
    connection.info.pop(_PENDING, None)


def _write(connection: Connection, pilots: list[int | None]) -> None:
    """The log rows, through the driver (the commit is under way: no new statement through
    SQLAlchemy), inside the transaction being committed."""
    now = datetime.now(UTC).replace(tzinfo=None)
    driver = connection.connection.driver_connection
    if driver is None:
        return
    cursor = driver.cursor()
    try:
        if connection.dialect.name == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_LOG_LOCK_KEY,))
            sql = "INSERT INTO data_changes (pilot_id, token, changed_at) VALUES (%s, %s, %s)"
            rows: list[tuple[Any, ...]] = [(p, secrets.token_hex(8), now) for p in pilots]
        else:
            sql = "INSERT INTO data_changes (pilot_id, token, changed_at) VALUES (?, ?, ?)"
            stamp = now.isoformat(sep=" ")
            rows = [(p, secrets.token_hex(8), stamp) for p in pilots]
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def latest_change(session: Any, pilot_id: int) -> tuple[object, ...]:
    """The pilot's data version: (id, token) of its newest log row and of the newest row for
    every pilot. Read inside a :func:`vaikuttavuus.database.read_snapshot` it names what that
    snapshot saw."""

    def newest(where: Any) -> tuple[Any, Any]:
        row = select(DataChange.id, DataChange.token).where(where)
        latest = row.order_by(DataChange.id.desc()).limit(1).subquery()
        return (
            select(latest.c.id).scalar_subquery(),
            select(latest.c.token).scalar_subquery(),
        )

    own = newest(DataChange.pilot_id == pilot_id)
    every = newest(DataChange.pilot_id.is_(None))
    return tuple(session.execute(select(*own, *every)).one())


def prune(session: Any) -> int:
    """Delete every log row but the newest of each pilot and the newest for every pilot: no
    version changes, and the log stays small. Returns the rows deleted."""
    from vaikuttavuus.database import affected_rows

    newest = select(func.max(DataChange.id)).group_by(DataChange.pilot_id)
    result = session.execute(delete(DataChange).where(DataChange.id.not_in(newest)))
    return affected_rows(result)
