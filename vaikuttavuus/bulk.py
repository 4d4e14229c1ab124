"""Fast bulk loading of pandas frames into tables, inside the session's transaction.

:func:`bulk_insert` writes a frame with PostgreSQL's ``COPY … FROM STDIN`` (psycopg 3, text
format, built with vectorised string operations) or, on SQLite, with the DBAPI's
``executemany`` over tuples in chunks. It bypasses the ORM (no objects, no events, no
per-row round trips), so the caller is responsible for ids and constraints:

* values are converted by the **table column's type**: ``NaN``/``NaT``/``None``/``pd.NA`` →
  NULL; integers and floats as numbers; booleans as ``1``/``0`` (SQLite) or ``t``/``f``;
  dates as ``YYYY-MM-DD``; timestamps as naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` — the forms
  SQLAlchemy itself stores — and JSON columns as JSON text;
* timestamps must be timezone-aware (any zone; they are converted to UTC), because the
  models store naive UTC (:class:`vaikuttavuus.models.base.UTCDateTime`) and a naive value
  would be ambiguous; a date column refuses values with a time of day;
* a column the frame leaves out gets the column's Python-side default (evaluated once for
  the whole frame, e.g. ``created_at = utcnow()``) or NULL; a column with a unique constraint
  and a callable default cannot be left out;
* explicit primary keys are allowed: reserve a range with :func:`next_id` first (and, on
  PostgreSQL, :func:`lock_tables` against concurrent writers); after an insert with explicit
  ids the PostgreSQL sequence is moved past the largest id (``setval``), so later ORM inserts
  do not collide.

On PostgreSQL most of a large load's time goes into checking foreign keys row by row;
:func:`foreign_keys_checked_at_end` checks them once per constraint, set-based, instead.
After a load of many rows, :func:`analyze_after_bulk` refreshes the planner's statistics of
the table (PostgreSQL), so the statements that follow are not planned on stale row counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import pandas as pd
from numpy.dtypes import StringDType
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from vaikuttavuus.change_log import note_write
from vaikuttavuus.database import AnySession

__all__ = [
    "BulkInsertError",
    "bulk_insert",
    "foreign_keys_checked_at_end",
    "indexed_foreign_keys",
    "lock_tables",
    "next_id",
    "reset_sequence",
]

CHUNK_ROWS = 100_000
BULK_ROWS = 2000
"""A change this large refreshes the table's planner statistics (:func:`analyze_after_bulk`)."""
SQLITE_LOAD_CACHE_KIB = 256 * 1024
_PG_NULL = "\\N"
_STRINGS = StringDType()


class BulkInsertError(ValueError):
    """A frame that cannot be written to its table (unknown column, wrong kind of value)."""


# -- public API ---------------------------------------------------------------------------------


def bulk_insert(
    session: AnySession, table: Table, frame: pd.DataFrame, *, chunk_rows: int = CHUNK_ROWS
) -> int:
    """Insert every row of ``frame`` into ``table``; returns the number of rows.

    Runs on the session's connection and transaction (pending ORM changes are flushed
    first); the caller commits. Raises :class:`BulkInsertError` for a column the table does
    not have or a value that does not fit its column's type, and SQLAlchemy's
    :class:`~sqlalchemy.exc.DBAPIError` subclasses (e.g. ``IntegrityError``) for what the
    database refuses.
    """
    session.flush()
    if frame.empty:
        return 0
    unknown = [name for name in frame.columns if name not in table.c]
    if unknown:
        raise BulkInsertError(f"{table.name}: no column(s) {', '.join(map(str, unknown))}")
    frame = _with_defaults(table, frame)
    columns = [table.c[name] for name in frame.columns]
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        if dialect == "postgresql":
            _copy_postgresql(driver, table, columns, frame, chunk_rows, connection.dialect)
        elif dialect == "sqlite":
            _executemany_sqlite(driver, table, columns, frame, chunk_rows, connection.dialect)
        else:
            raise NotImplementedError(f"bulk loading is not implemented for {dialect}")
    except driver_error as error:
        # the same exception classes as a statement run through SQLAlchemy
        raise DBAPIError.instance(
            f"bulk insert into {table.name}", None, error, driver_error
        ) from error
    note_write(connection, table.name)  # the driver's writes pass no SQLAlchemy event
    primary = list(table.primary_key.columns)
    if dialect == "postgresql" and len(primary) == 1 and primary[0].name in frame.columns:
        reset_sequence(session, table)
    return len(frame)


def analyze_after_bulk(session: AnySession, table: str, rows: int) -> None:
    """PostgreSQL: refresh ``table``'s planner statistics after this transaction changed
    ``rows`` of its rows (at least :data:`BULK_ROWS`; ANALYZE counts the transaction's own new
    rows).

    Autovacuum catches up within a minute or so, but a statement planned before it does uses
    the old row counts. After a bulk load into a table the planner still believes small:
    anti-joins become sequential scans (24 s instead of 0.5 s for 120 000 invitations), and a
    read of the answers of 1 000 enrolments a nested loop over sequential scans (more than
    eight minutes instead of 7 ms at 20 000 people: the wide export right after an import).
    """
    if rows >= BULK_ROWS and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {table}"))


def next_id(session: AnySession, table: Table) -> int:
    """The first free id of ``table``: above its largest id and, on PostgreSQL, above every
    value its sequence has handed out (so ids of deleted rows are not reused there)."""
    (column,) = table.primary_key.columns
    largest = int(session.scalar(select(func.coalesce(func.max(column), 0))) or 0)
    sequence = _sequence_name(session, table)
    if sequence is not None:
        last_value, is_called = session.execute(
            text(f"SELECT last_value, is_called FROM {sequence}")
        ).one()
        largest = max(largest, int(last_value) if is_called else int(last_value) - 1)
    return largest + 1


def reset_sequence(session: AnySession, table: Table) -> None:
    """PostgreSQL: move the id sequence past the largest id (never backwards)."""
    sequence = _sequence_name(session, table)
    if sequence is None:
        return
    (column,) = table.primary_key.columns
    largest = int(session.scalar(select(func.coalesce(func.max(column), 0))) or 0)
    session.execute(
        text(
            "SELECT setval(CAST(:sequence AS regclass), GREATEST(:largest, "
            f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}), 1), "
            ":called)"
        ),
        {"sequence": sequence, "largest": largest, "called": largest > 0},
    )


@contextmanager
def foreign_keys_checked_at_end(session: AnySession, tables: Iterable[Table]) -> Iterator[None]:
    """PostgreSQL: check the foreign keys of ``tables`` once, at the end, not row by row.

    The tables' own foreign-key constraints are dropped for the block and added back after
    it, exactly as they were (``pg_get_constraintdef``); adding a constraint back validates
    every row in one pass, so a dangling reference still fails the load. All of it runs in the
    caller's transaction (PostgreSQL DDL is transactional): a rollback restores the
    constraints untouched. The tables and the tables they refer to are locked against
    writers until the transaction ends, and the database user must own the tables. SQLite:
    nothing changes (its row-by-row checks are cheap).
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    preparer = session.get_bind().dialect.identifier_preparer
    dropped: list[tuple[str, str, str]] = []
    for table in tables:
        target = preparer.format_table(table)
        rows = session.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = CAST(:table AS regclass) ORDER BY conname"
            ),
            {"table": target},
        ).all()
        for name, definition in rows:
            session.execute(text(f"ALTER TABLE {target} DROP CONSTRAINT {preparer.quote(name)}"))
            dropped.append((target, name, definition))
    try:
        yield
    except BaseException:
        # Put them back if the transaction still works; after a database error PostgreSQL
        # refuses every statement and the caller's rollback restores them anyway.
        with suppress(Exception):
            _add_constraints(session, dropped)
        raise
    _add_constraints(session, dropped)


def _add_constraints(session: AnySession, constraints: list[tuple[str, str, str]]) -> None:
    preparer = session.get_bind().dialect.identifier_preparer
    for target, name, definition in constraints:
        session.execute(
            text(f"ALTER TABLE {target} ADD CONSTRAINT {preparer.quote(name)} {definition}")
        )


@contextmanager
def indexed_foreign_keys(session: AnySession, tables: Iterable[Table]) -> Iterator[None]:
    """SQLite: index, for the block, the foreign-key columns of ``tables`` that no index
    starts with, so that deleting many parent rows does not scan the child table once per row
    (the foreign-key check). The indexes are created and dropped inside the caller's
    transaction. PostgreSQL: nothing changes (use :func:`foreign_keys_checked_at_end`)."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    preparer = session.get_bind().dialect.identifier_preparer
    created = []
    for table in tables:
        for column in _unindexed_foreign_keys(table):
            name = preparer.quote(f"tmp_bulk_{table.name}_{column.name}")
            session.execute(
                text(
                    f"CREATE INDEX {name} ON {preparer.format_table(table)} "
                    f"({preparer.quote(column.name)})"
                )
            )
            created.append(name)
    try:
        yield
    finally:
        with suppress(Exception):
            for name in created:
                session.execute(text(f"DROP INDEX IF EXISTS {name}"))


def _unindexed_foreign_keys(table: Table) -> list[Column[Any]]:
    leading = {index.columns[0].name for index in table.indexes if len(index.columns)}
    leading |= {
        next(iter(constraint.columns)).name
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint) and constraint.columns
    }
    return [
        key.parent
        for key in sorted(table.foreign_keys, key=lambda key: key.parent.name)
        if key.parent.name not in leading
    ]


def lock_tables(session: AnySession, tables: Iterable[Table]) -> None:
    """PostgreSQL: keep other writers out of ``tables`` until the transaction ends (reads go
    on), so ids reserved with :func:`next_id` stay free. SQLite serialises writers anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return
    preparer = session.get_bind().dialect.identifier_preparer
    names = ", ".join(preparer.format_table(table) for table in tables)
    session.execute(text(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE"))


# -- preparation ----------------------------------------------------------------------------


def _with_defaults(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the omitted columns that have a Python-side default."""
    added: dict[str, Any] = {}
    for column in table.columns:
        if column.name in frame.columns or column.default is None:
            continue
        default = column.default
        if getattr(default, "is_sequence", False) or getattr(default, "is_clause_element", False):
            continue
        if getattr(default, "is_callable", False):
            if column.unique:
                raise BulkInsertError(
                    f"{table.name}.{column.name}: give the values (a unique column's default "
                    "cannot be shared by every row)"
                )
            added[column.name] = default.arg(None)  # type: ignore[attr-defined]
        elif getattr(default, "is_scalar", False):
            added[column.name] = default.arg  # type: ignore[attr-defined]
    if not added:
        return frame
    # arrays without an index: a frame whose index does not start at 0 (a chunk) must not
    # align the defaults away
    extra = pd.DataFrame(
        {name: _unindexed(_repeat(value, len(frame))) for name, value in added.items()},
        index=frame.index,
    )
    return pd.concat([frame, extra], axis=1)


def _repeat(value: Any, count: int) -> Any:
    if isinstance(value, dict | list):
        array = np.empty(count, dtype=object)
        array[:] = [value] * count
        return array
    return pd.Series([value] * count) if count else pd.Series([], dtype=object)


def _unindexed(values: Any) -> Any:
    return values.array if isinstance(values, pd.Series) else values


def _kind(column: Column[Any]) -> str:
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, DateTime):
        return "datetime"
    if isinstance(column_type, Date):
        return "date"
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, Integer):
        return "int"
    if isinstance(column_type, Float | Numeric):
        return "float"
    if isinstance(column_type, JSON):
        return "json"
    if isinstance(column_type, String | Text):
        return "text"
    raise BulkInsertError(f"{column.table.name}.{column.name}: unsupported type {column_type}")


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def _missing(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy(dtype=bool)


def _column_values(column: Column[Any], values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(Python values as an object array, NULL mask) for one column of one chunk.

    Dates and timestamps come back as their stored text; everything else as ``int``,
    ``float``, ``bool``, ``str`` or JSON text.
    """
    kind = _kind(column)
    name = f"{column.table.name}.{column.name}"
    missing = _missing(values)
    if kind == "datetime":
        return _timestamp_text(name, values), missing
    if kind == "date":
        return _date_text(name, values), missing
    result = np.empty(len(values), dtype=object)
    present = ~missing
    if not present.any():
        return result, missing
    known = values[present]
    if kind == "bool":
        result[present] = _as_bool(name, known)
    elif kind == "int":
        numbers = pd.to_numeric(known, errors="coerce")
        as_float = numbers.to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(as_float).any() or (as_float != np.round(as_float)).any():
            raise BulkInsertError(f"{name}: not whole numbers")
        result[present] = numbers.to_numpy(dtype=np.int64).tolist()
    elif kind == "float":
        floats = pd.to_numeric(known, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(floats).any():
            raise BulkInsertError(f"{name}: not numbers")
        result[present] = floats.tolist()
    elif kind == "json":
        result[present] = [json.dumps(value, ensure_ascii=False) for value in known.tolist()]
    elif isinstance(known.dtype, pd.StringDtype):
        result[present] = known.tolist()
    else:
        result[present] = [v if isinstance(v, str) else str(v) for v in known.tolist()]
    return result, missing


def _as_bool(name: str, values: pd.Series) -> list[bool]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(bool).tolist()
    out = []
    for value in values.tolist():
        if isinstance(value, bool | np.bool_) or value in (0, 1):
            out.append(bool(value))
        else:
            raise BulkInsertError(f"{name}: {value!r} is not a boolean")
    return out


def _as_datetimes(name: str, values: pd.Series) -> pd.Series:
    """Timezone-aware values as naive UTC ``datetime64``; naive values are refused."""
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        present = values.dropna().tolist()
        if any(getattr(v, "tzinfo", None) is None for v in present):
            raise BulkInsertError(
                f"{name}: timestamps must be timezone-aware (the database stores UTC)"
            )
        values = pd.to_datetime(values, utc=True)
    if getattr(values.dt, "tz", None) is None:
        raise BulkInsertError(
            f"{name}: timestamps must be timezone-aware (the database stores UTC)"
        )
    return values.dt.tz_convert("UTC").dt.tz_localize(None)


def _timestamp_text(name: str, values: pd.Series) -> np.ndarray:
    naive = _as_datetimes(name, values)
    return _format_distinct(
        naive, lambda u: np.strings.replace(np.datetime_as_string(u, unit="us"), "T", " ")
    )


def _date_text(name: str, values: pd.Series) -> np.ndarray:
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = pd.to_datetime(values)
    if getattr(values.dt, "tz", None) is not None:
        raise BulkInsertError(f"{name}: a date column takes dates, not timezone-aware times")
    if (values.dropna() != values.dropna().dt.normalize()).any():
        raise BulkInsertError(f"{name}: a date column takes dates, not times of day")
    return _format_distinct(values, lambda u: np.datetime_as_string(u, unit="D"))


def _format_distinct(values: pd.Series, formatter: Any) -> np.ndarray:
    """Format each distinct ``datetime64`` value once (None for NaT)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype="datetime64[us]"))
    texts = np.empty(len(uniques) + 1, dtype=object)
    if len(uniques):
        texts[:-1] = formatter(np.asarray(uniques, dtype="datetime64[us]")).astype(object)
    texts[-1] = None
    return texts[codes]  # code −1 (NaT) picks the trailing None


# -- SQLite -------------------------------------------------------------------------------------


def _executemany_sqlite(
    driver: Any,
    table: Table,
    columns: list[Column[Any]],
    frame: pd.DataFrame,
    chunk_rows: int,
    dialect: Any,
) -> None:
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in columns)
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})"
    cursor = driver.cursor()
    # A large load into tables with randomly ordered index keys (pseudonyms, idempotency
    # keys, status) thrashes SQLite's default 2 MiB page cache; use a bigger one meanwhile.
    previous_cache = cursor.execute("PRAGMA cache_size").fetchone()[0]
    if len(frame) > chunk_rows // 10:
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}")
    try:
        for chunk in _chunks(frame, chunk_rows):
            prepared = [
                _column_values(column, chunk[column.name])[0].tolist() for column in columns
            ]
            cursor.executemany(statement, zip(*prepared, strict=True))
    finally:
        cursor.execute(f"PRAGMA cache_size = {int(previous_cache)}")
        cursor.close()


# -- PostgreSQL ----------------------------------------------------------------------------------


def _copy_postgresql(
    driver: Any,
    table: Table,
    columns: list[Column[Any]],
    frame: pd.DataFrame,
    chunk_rows: int,
    dialect: Any,
) -> None:
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in columns)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in _chunks(frame, chunk_rows):
            copy.write(_copy_text(columns, chunk))


def _copy_text(columns: list[Column[Any]], chunk: pd.DataFrame) -> bytes:
    """One chunk in COPY's text format: tab-separated, ``\\N`` for NULL, escaped text."""
    line: np.ndarray | None = None
    for column in columns:
        field = _copy_field(column, chunk[column.name])
        line = field if line is None else np.strings.add(np.strings.add(line, "\t"), field)
    assert line is not None
    return ("\n".join(line.astype(object).tolist()) + "\n").encode("utf-8")


def _copy_field(column: Column[Any], values: pd.Series) -> np.ndarray:
    kind = _kind(column)
    name = f"{column.table.name}.{column.name}"
    missing = _missing(values)
    if kind in {"int", "float"} and not missing.any() and values.dtype.kind in "iuf":
        numbers = values.to_numpy()
        if kind == "int" and numbers.dtype.kind == "f":
            if (numbers != np.round(numbers)).any():
                raise BulkInsertError(f"{name}: not whole numbers")
            numbers = numbers.astype(np.int64)
        if kind == "float":
            numbers = numbers.astype(float)
        return numbers.astype(_STRINGS)
    raw, missing = _column_values(column, values)
    if kind == "bool":
        texts = np.full(len(raw), _PG_NULL, dtype=object)
        texts[~missing] = np.where(raw[~missing].astype(bool), "t", "f")
        return texts.astype(_STRINGS)
    if kind in {"text", "json"}:
        codes, uniques = pd.factorize(raw[~missing])
        escaped = np.array([_escape(u) for u in uniques], dtype=object)
        result = np.full(len(raw), _PG_NULL, dtype=object)
        result[~missing] = escaped[codes] if len(codes) else []
        return result.astype(_STRINGS)
    if kind in {"int", "float"}:
        result = np.full(len(raw), _PG_NULL, dtype=object)
        present = ~missing
        result[present] = (
            np.asarray(raw[present].tolist(), dtype=float if kind == "float" else np.int64)
            .astype(_STRINGS)
            .astype(object)
        )
        return result.astype(_STRINGS)
    # dates and timestamps: already text
    return np.where(missing, _PG_NULL, raw).astype(_STRINGS)


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _sequence_name(session: AnySession, table: Table) -> str | None:
    if session.get_bind().dialect.name != "postgresql":
        return None
    (column,) = table.primary_key.columns
    qualified = f"{table.schema}.{table.name}" if table.schema else table.name
    return session.scalar(
        text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": qualified, "column": column.name},
    )
