"""The database layer's plumbing: engine settings, the request-boundary commit, consistent
read snapshots, migrations.

Services only ``flush()``; the request boundary commits (or rolls back on an error), so a
response that reaches the browser has its data on disk. CLI commands commit explicitly.

Every analysis, page and export reads inside :func:`read_snapshot`: one read-only transaction
(REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so all of its statements see
the database as it was at one moment, whatever patients submit meanwhile.

A SQLite database file is created readable by its owner only (0600; SQLite gives its
write-ahead log and shared-memory files the same mode), and an instance folder created here
is 0700.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session
from werkzeug.wrappers import Response

from vaikuttavuus import change_log  # noqa: F401  (registers the change log's events)
from vaikuttavuus.extensions import db

AnySession: TypeAlias = Session | scoped_session[FlaskSession]
"""What the database layer and the services accept as a session: the request's scoped
``db.session`` or a plain :class:`~sqlalchemy.orm.Session` (a CLI command's, a
:class:`SnapshotSession`'s). Both offer the same methods."""

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def create_private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; the folder itself is made 0700.

    An existing folder keeps its mode (an administrator may have chosen another)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_FOLDER_MODE)
    except FileExistsError:  # created meanwhile by another process
        return
    path.chmod(PRIVATE_FOLDER_MODE)


def create_private_file(path: Path) -> bool:
    """Create an empty file readable and writable by its owner only (0600) if it does not
    exist; returns whether it was created. An empty file is a valid empty SQLite database."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(descriptor)
    return True


def sqlite_file(database: str | None) -> Path | None:
    """The file of a SQLite database name, or None for an in-memory or URI database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def init_app(app: Flask) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    options: dict[str, Any] = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if url.startswith("sqlite"):
        create_private_folder(Path(app.instance_path))
        # How long a writer waits for the write lock before giving up (then the request
        # answers 503 "try again in a minute").
        busy_timeout = float(app.config.get("SQLITE_BUSY_TIMEOUT", 30))
        options.setdefault("connect_args", {}).setdefault("timeout", busy_timeout)
    else:
        options.setdefault("pool_pre_ping", True)  # replaces connections broken by an outage
        options.setdefault("pool_size", 10)
        options.setdefault("max_overflow", 20)
        options.setdefault("pool_timeout", 10)  # then 503 "try again", not a hanging request
        # A server that does not answer at all (not even "refused") fails fast, too.
        options.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.config.setdefault("SQLALCHEMY_TRACK_MODIFICATIONS", False)
    db.init_app(app)

    @app.after_request
    def _commit(response: Response) -> Response:
        """Commit the request's unit of work before the response leaves. If the database is
        unavailable by then, nothing was stored and the response becomes the 503 page."""
        from vaikuttavuus.health import is_outage

        try:
            if response.status_code < 400 or getattr(response, "commit_on_error", False):
                db.session.commit()
            else:
                db.session.rollback()
        except Exception as error:
            if not is_outage(error):
                raise
            from vaikuttavuus.web import service_unavailable

            return service_unavailable(error)
        retry_after = getattr(response, "outage_retry_after", None)
        if retry_after is not None:  # a 503 page: its Retry-After, not the rate limiter's
            response.headers["Retry-After"] = str(retry_after)
        return response


@event.listens_for(Engine, "do_connect")
def _create_sqlite_file_privately(
    dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> None:
    """Before SQLite would create a missing database file (mode 0644 under the usual umask),
    create it with mode 0600; the normal connect then opens it."""
    if dialect.name != "sqlite" or cparams.get("uri"):
        return
    database = cargs[0] if cargs else cparams.get("database")
    path = sqlite_file(str(database) if database is not None else None)
    if path is not None and path.parent.is_dir():
        create_private_file(path)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: write-ahead log, enforced foreign keys, fsync on commit. How long to wait on a
    lock is the driver's ``timeout`` (``SQLITE_BUSY_TIMEOUT``, 30 s by default)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


def is_sqlite(session_or_engine: Session | Engine | Connection | None = None) -> bool:
    engine: Engine | Connection
    if isinstance(session_or_engine, Session):
        engine = session_or_engine.get_bind()
    else:
        engine = session_or_engine or db.engine
    return engine.dialect.name == "sqlite"


LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` anywhere, with ``%`` and ``_`` typed by a user
    taken literally (use with ``.like(pattern, escape=LIKE_ESCAPE)``): a search for ``%``
    must not list everyone."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def insert_for(session: AnySession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """A dialect-specific INSERT that supports ``on_conflict_do_update``/``do_nothing``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def upsert(
    session: AnySession,
    table: Any,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """Insert ``rows``, updating ``update_columns`` where ``conflict_columns`` already exist."""
    if not rows:
        return
    statement: Any = insert_for(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict_columns),
        set_={column: statement.excluded[column] for column in update_columns},
    )
    session.execute(statement, list(rows))


# -- consistent reads ---------------------------------------------------------------------------

SNAPSHOT_KEY = "vaikuttavuus.read_snapshot"


class SnapshotError(RuntimeError):
    """A read snapshot was opened while the session held unsaved changes."""


class DataVersionAuditError(AssertionError):
    """``DATA_VERSION_AUDIT``: the data changed but the change log's version did not."""


@dataclass(frozen=True)
class DataVersion:
    """What a snapshot saw of one pilot's data: its newest rows in the data change log
    (:func:`vaikuttavuus.change_log.latest_change`), which every committed change of what the
    analyses read moves. Equal versions mean equal inputs, so it is the key for anything
    cached or stored per data (reference bands, analysis snapshots)."""

    pilot_id: int
    fingerprint: tuple[object, ...]
    taken_at: datetime

    @property
    def label(self) -> str:
        """A short, stable name of the version for pages and response headers."""
        return hashlib.sha256(repr(self.fingerprint).encode()).hexdigest()[:10]


@dataclass
class ReadSnapshot:
    """The open read-only transaction of :func:`read_snapshot`."""

    session: Session
    backend: str
    taken_at: datetime
    _versions: dict[int, DataVersion] = field(default_factory=dict)

    def data_version(self, pilot_id: int) -> DataVersion:
        """The pilot's data version as this snapshot sees it (read once per snapshot)."""
        version = self._versions.get(pilot_id)
        if version is None:
            from vaikuttavuus.change_log import latest_change

            fingerprint = latest_change(self.session, pilot_id)
            version = DataVersion(pilot_id, fingerprint, self.taken_at)
            self._versions[pilot_id] = version
            if has_app_context() and current_app.config.get("DATA_VERSION_AUDIT"):
                _audit_data_version(self.session, version)
        return version


def _audit_data_version(session: Session, version: DataVersion) -> None:
    """Check the change log against the full fingerprint of the data
    (:func:`vaikuttavuus.queries.pilot_data_version`, which aggregates every table the
    analyses read): one version must always stand for one fingerprint. On in the test suite,
    so every write path its tests take is checked; too slow for production at scale."""
    from vaikuttavuus.queries import pilot_data_version

    fingerprint = pilot_data_version(session, version.pilot_id)
    seen: dict[tuple[int, tuple[object, ...]], tuple[object, ...]]
    seen = current_app.extensions.setdefault("vaikuttavuus.data_version_audit", {})
    key = (version.pilot_id, version.fingerprint)
    earlier = seen.setdefault(key, fingerprint)
    if earlier != fingerprint:
        raise DataVersionAuditError(
            f"pilot {version.pilot_id}: the data changed ({earlier} -> {fingerprint}) but the "
            f"change log's version {version.fingerprint} did not: a write outside its scopes?"
        )


def _plain_session(session: AnySession | None) -> Session:
    if session is None:
        return db.session()
    if isinstance(session, scoped_session):
        return session()
    return session


def current_snapshot(
    session: AnySession | None = None,
) -> ReadSnapshot | None:
    """The read snapshot open on ``session`` (default: the app's), if any."""
    found = _plain_session(session).info.get(SNAPSHOT_KEY)
    return found if isinstance(found, ReadSnapshot) else None


def _end_transaction_keeping_objects(session: Session) -> None:
    """Commit the session's transaction (normally reads only) without expiring the objects
    already loaded (the pilot, the user), so they stay usable without reloading."""
    if not session.in_transaction():
        return
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = previous


@contextlib.contextmanager
def read_snapshot(
    session: AnySession | None = None,
) -> Iterator[ReadSnapshot]:
    """Run the block's reads in one consistent, read-only snapshot of the database.

    * PostgreSQL: a ``REPEATABLE READ, READ ONLY`` transaction: every statement sees the data
      committed before its first statement, nothing later.
    * SQLite: an explicit read transaction (the driver begins none for SELECTs, so each
      statement would otherwise see the newest data); in WAL mode it never blocks writers.
      ``PRAGMA query_only`` makes it read-only like PostgreSQL's.

    The transaction the session had open (the request's reads so far) is committed first;
    pending changes are refused (:class:`SnapshotError`): write before or after the snapshot,
    e.g. audit events after it. Objects loaded before stay usable. Nested use joins the open
    snapshot. On leaving, the transaction ends and the session is back to normal.
    """
    session = _plain_session(session)
    existing = current_snapshot(session)
    if existing is not None:
        yield existing
        return
    if session.new or session.dirty or session.deleted:
        raise SnapshotError("a read snapshot cannot start with unsaved changes in the session")
    _end_transaction_keeping_objects(session)
    connection = session.connection()
    backend = connection.dialect.name
    failed = False
    try:
        if backend == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        elif backend == "sqlite":
            connection.exec_driver_sql("PRAGMA query_only = ON")
            connection.exec_driver_sql("BEGIN")
            # A read transaction takes its snapshot at its first read: take it now.
            connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()
        snapshot = ReadSnapshot(session=session, backend=backend, taken_at=datetime.now(UTC))
        session.info[SNAPSHOT_KEY] = snapshot
        yield snapshot
    except BaseException:
        failed = True
        raise
    finally:
        session.info.pop(SNAPSHOT_KEY, None)
        _close_snapshot(session, connection, backend, failed=failed)


def _close_snapshot(
    session: Session, connection: Connection, backend: str, *, failed: bool
) -> None:
    """End the snapshot's transaction; a connection that cannot be reset is discarded."""
    try:
        if backend == "sqlite":
            connection.exec_driver_sql("PRAGMA query_only = OFF")
        if failed:
            session.rollback()
        else:
            _end_transaction_keeping_objects(session)
    except Exception:
        with contextlib.suppress(Exception):
            connection.invalidate()
        with contextlib.suppress(Exception):
            session.rollback()
        if not failed:
            raise


class SnapshotSession:
    """A session of its own, on a connection of its own, with a read snapshot open on it: for
    reads that outlive the request, such as a streamed download, which must see one moment
    of the data from its first row to its last. :meth:`close` ends the snapshot and returns
    the connection (idempotent; call it when the download ends or is abandoned)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.session = Session(bind=engine if engine is not None else db.engine)
        self._stack = contextlib.ExitStack()
        try:
            self.snapshot = self._stack.enter_context(read_snapshot(self.session))
        except BaseException:
            self.session.close()
            raise
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stack.close()
        finally:
            self.session.close()


# -- migrations -------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", current_app.config["SQLALCHEMY_DATABASE_URI"])
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_schema(revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (idempotent)."""
    with db.engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def current_revision() -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def table_names() -> list[str]:
    return sorted(inspect(db.engine).get_table_names())


def affected_rows(result: Any) -> int:
    """The rows an UPDATE or DELETE changed (0 when the driver does not say)."""
    return max(int(getattr(result, "rowcount", 0) or 0), 0)
