"""Alembic environment: runs against the connection handed over by the app, or the URL."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, engine_from_config, pool

from vaikuttavuus import change_log
from vaikuttavuus.models import Base
from vaikuttavuus.models.base import UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write app-level column types as their plain SQL types so migrations stay frozen."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = engine_from_config(
            config.get_section(config.config_ini_section) or {},
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        with engine.connect() as fresh:
            _run(fresh)
        return
    _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with change_log.migrating(connection), context.begin_transaction():
        _begin_sqlite_transaction(connection)
        context.run_migrations()


def _begin_sqlite_transaction(connection: Connection) -> None:
    """SQLite's driver opens a transaction only before a data change, so each DDL statement
    would be committed on its own: a step refused half-way through a run (a downgrade that
    would lose data) would leave the earlier steps' tables changed but their revision not
    recorded. An explicit BEGIN makes the run one transaction on SQLite too (its DDL is
    transactional), as it is on PostgreSQL."""
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.dbapi_connection
    if driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
