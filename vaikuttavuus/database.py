"""The database layer's plumbing: engine settings, the request-boundary commit, migrations.

Services only ``flush()``; the request boundary commits (or rolls back on an error), so a
response that reaches the browser has its data on disk. CLI commands commit explicitly.

A SQLite database file is created readable by its owner only (0600; SQLite gives its
write-ahead log and shared-memory files the same mode), and an instance folder created here
is 0700.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from flask import Flask, Response, current_app
from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert

from vaikuttavuus.extensions import db

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
        options.setdefault("connect_args", {}).setdefault("timeout", 30)
    else:
        options.setdefault("pool_pre_ping", True)
        options.setdefault("pool_size", 10)
        options.setdefault("max_overflow", 20)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.config.setdefault("SQLALCHEMY_TRACK_MODIFICATIONS", False)
    db.init_app(app)

    @app.after_request
    def _commit(response: Response) -> Response:
        """Commit the request's unit of work before the response leaves."""
        if response.status_code < 400 or getattr(response, "commit_on_error", False):
            db.session.commit()
        else:
            db.session.rollback()
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
    """SQLite: write-ahead log, enforced foreign keys, fsync on commit, wait on locks."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def is_sqlite(session_or_engine: Session | Engine | Connection | None = None) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else None
    engine = bind or session_or_engine or db.engine
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


def insert_for(session: Session, table: Any) -> Insert:
    """A dialect-specific INSERT that supports ``on_conflict_do_update``/``do_nothing``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def upsert(
    session: Session,
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
