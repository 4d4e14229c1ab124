"""``vaikuttavuus backup`` and ``vaikuttavuus restore``.

SQLite
    *backup* uses SQLite's online backup API, so the copy is consistent even while the app is
    writing (readers and the writer carry on). *restore* checks the backup, copies it to a
    temporary file next to the database and atomically renames it over the database file.
    **Stop the app first**: a running app keeps the old file open and would go on writing to it.

PostgreSQL
    *backup* runs ``pg_dump --format=custom`` (consistent: one snapshot) and *restore*
    ``pg_restore --clean --if-exists --single-transaction`` (all or nothing), both with the
    connection parameters of ``DATABASE_URL`` (the password through the environment, never on
    the command line) and with the client programs of the server's major version when they are
    installed (``/usr/lib/postgresql/<version>/bin``). Stop the app first here too.

Every backup gets a sidecar ``<file>.meta.json``: when and from what it was made, its SHA-256,
the row count of every table and the schema revision *of what the backup holds* (SQLite:
counted in the copy; PostgreSQL: counted in the snapshot that ``pg_dump --snapshot`` dumps,
exported by our own transaction) and the *fingerprints* of the instance keys (never the
keys). A restore into an instance whose ``PSEUDONYM_KEY`` differs warns: the stored
identity-code hashes would no longer match new ones. Keep ``instance/config.py`` backed up
separately (it holds the keys).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Connection, func, inspect, select, table, text
from sqlalchemy.engine import URL, make_url

from vaikuttavuus import __version__

FORMAT = "vaikuttavuus-backup/1"
SIDECAR_SUFFIX = ".meta.json"


class BackupError(click.ClickException):
    """A backup or restore that cannot go on; nothing was changed."""


# -- shared ------------------------------------------------------------------------------------


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _database_url() -> URL:
    return make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])


def _backend(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return "sqlite"
    if url.get_backend_name() == "postgresql":
        return "postgresql"
    raise BackupError(f"backups of {url.get_backend_name()} databases are not supported")


def key_fingerprints() -> dict[str, str | None]:
    from vaikuttavuus.security.tokens import key_fingerprint

    return {
        "pseudonym_key": key_fingerprint(current_app.config.get("PSEUDONYM_KEY")),
        "secret_key": key_fingerprint(current_app.config.get("SECRET_KEY")),
    }


def row_counts(connection: Connection) -> dict[str, int]:
    """Rows per table as ``connection``'s transaction sees them."""
    names = sorted(inspect(connection).get_table_names())
    return {
        name: int(connection.scalar(select(func.count()).select_from(table(name))) or 0)
        for name in names
    }


def _revision_of(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _revision() -> str | None:
    from vaikuttavuus.database import current_revision

    return current_revision()


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_sidecar(out: Path, backend: str, url: URL, extra: dict[str, Any]) -> dict[str, Any]:
    """The sidecar; ``extra`` holds what the backup itself holds (``row_counts`` and
    ``schema_revision`` of the backed-up snapshot) and backend details."""
    meta = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "database": url.render_as_string(hide_password=True).replace("***", "…"),
        "app_version": __version__,
        "key_fingerprints": key_fingerprints(),
        "file": out.name,
        "sha256": file_sha256(out),
        "size_bytes": out.stat().st_size,
        **extra,
    }
    target = sidecar_path(out)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(target)
    return meta


# -- commands ----------------------------------------------------------------------------------


@click.command("backup")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The backup file to write (a sidecar FILE.meta.json is written next to it).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing backup file.")
@with_appcontext
def backup_command(out: Path, force: bool) -> None:
    """Back the database up (consistently, while the app may be running)."""
    url = _database_url()
    backend = _backend(url)
    out = out.resolve()
    if out.exists() and not force:
        raise BackupError(f"{out} exists (use --force to overwrite it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = _backup_sqlite(url, out) if backend == "sqlite" else _backup_postgresql(url, out)
    meta = _write_sidecar(out, backend, url, extra)
    _record("backup_database", {"file": out.name, "sha256": meta["sha256"]})
    total = sum(meta["row_counts"].values())
    click.echo(f"Backed up {total} rows ({meta['size_bytes']} bytes) to {out}")
    click.echo(f"Sidecar: {sidecar_path(out)} (key fingerprints, no keys)")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(file: Path, yes: bool) -> None:
    """Replace the database with a backup. Stop the app (and the workers) first."""
    url = _database_url()
    backend = _backend(url)
    file = file.resolve()
    meta = _read_sidecar(file)
    if meta is not None:
        if meta.get("backend") != backend:
            raise BackupError(
                f"the backup is of a {meta.get('backend')} database; this instance uses {backend}"
            )
        if meta.get("sha256") != file_sha256(file):
            raise BackupError(
                f"{file.name} does not match its sidecar's SHA-256: damaged or changed"
            )
        _warn_about_keys(meta)
    else:
        click.secho(
            f"Warning: no {sidecar_path(file).name}; the keys and the file cannot be checked.",
            fg="yellow",
            err=True,
        )
    target = url.database if backend == "postgresql" else _sqlite_path(url)
    click.echo(f"This replaces every table of {target} with {file.name}.")
    click.echo("Stop the app first: a running app would keep writing to the old database.")
    if not yes and not click.confirm("Restore?", default=False):
        raise BackupError("not restored")
    if backend == "sqlite":
        _restore_sqlite(url, file)
    else:
        _restore_postgresql(url, file)
    revision = _revision()
    _record("restore_database", {"file": file.name, "schema_revision": revision})
    click.echo(f"Restored {file.name}; schema revision {revision}.")
    from vaikuttavuus.database import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if revision not in heads:
        click.echo("The schema is older than this app: run `vaikuttavuus db upgrade`.")


def _read_sidecar(file: Path) -> dict[str, Any] | None:
    path = sidecar_path(file)
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"{path.name} cannot be read: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BackupError(f"{path.name} is not a Vaikuttavuus backup sidecar")
    return meta


def _warn_about_keys(meta: dict[str, Any]) -> None:
    theirs = (meta.get("key_fingerprints") or {}).get("pseudonym_key")
    ours = key_fingerprints()["pseudonym_key"]
    if theirs and ours and theirs != ours:
        click.secho(
            "Warning: the backup was made by an instance with another PSEUDONYM_KEY "
            f"(fingerprint {theirs}, this instance {ours}). Identity codes entered or imported "
            "after the restore would not match the people in it: restore that instance's "
            "instance/config.py (its keys) as well.",
            fg="yellow",
            err=True,
        )


def _record(action: str, details: dict[str, Any]) -> None:
    """Audit a backup or restore (in the database as it is afterwards)."""
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import audit

    audit.record(action, object_type="database", actor="cli", details=details)
    db.session.commit()


# -- SQLite ------------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database).resolve()


def _backup_sqlite(url: URL, out: Path) -> dict[str, Any]:
    source_path = _sqlite_path(url)
    temporary = Path(tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")[1])
    try:
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
        try:
            destination = sqlite3.connect(temporary)
            try:
                # One step (pages=-1): a single read transaction, so the copy is one consistent
                # state however busy the app is.
                source.backup(destination, pages=-1)
                destination.execute("PRAGMA journal_mode=DELETE")  # a self-contained file
                _check_sqlite(destination, temporary)
                counts, revision = _sqlite_contents(destination)  # counted in the copy
            finally:
                destination.close()
        finally:
            source.close()
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        temporary.replace(out)
        _fsync_directory(out.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return {
        "sqlite_version": sqlite3.sqlite_version,
        "row_counts": counts,
        "schema_revision": revision,
    }


def _sqlite_contents(connection: sqlite3.Connection) -> tuple[dict[str, int], str | None]:
    """Rows per table and the schema revision of a SQLite file (the backup copy)."""
    names = sorted(
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    counts = {
        name: int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
        for name in names
    }
    revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return counts, (str(revision[0]) if revision else None)


def _check_sqlite(connection: sqlite3.Connection, path: Path) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchone()
    if not result or result[0] != "ok":
        raise BackupError(f"{path.name} failed SQLite's integrity check: {result}")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    if "alembic_version" not in tables:
        raise BackupError(f"{path.name} is not a Vaikuttavuus database (no schema revision)")


def _restore_sqlite(url: URL, file: Path) -> None:
    from vaikuttavuus.database import create_private_file
    from vaikuttavuus.extensions import db

    target = _sqlite_path(url)
    db.session.remove()
    db.engine.dispose()
    _refuse_if_in_use(target)
    temporary = target.with_name(f".{target.name}.restore-{os.getpid()}")
    try:
        source = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            _check_sqlite(source, file)
            temporary.unlink(missing_ok=True)
            create_private_file(temporary)  # the restored database is 0600 like a new one
            destination = sqlite3.connect(temporary)
            try:
                source.backup(destination, pages=-1)
                destination.execute("PRAGMA journal_mode=DELETE")
            finally:
                destination.close()
        finally:
            source.close()
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        if target.exists():
            # Fold the old write-ahead log into the old file and remove it, so that no stale
            # log can ever be replayed onto the restored file. Leaving WAL mode needs the only
            # connection: it fails while anything else has the database open.
            old = sqlite3.connect(target, timeout=2)
            try:
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                old.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError as error:
                raise _in_use(target, error) from error
            finally:
                old.close()
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        temporary.replace(target)
        _fsync_directory(target.parent)
    finally:
        temporary.unlink(missing_ok=True)
    with sqlite3.connect(target) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _refuse_if_in_use(target: Path) -> None:
    """A connection holding a lock (a writing or reading app) makes an exclusive lock fail."""
    if not target.exists():
        return
    connection = sqlite3.connect(target, timeout=0.5, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        raise _in_use(target, error) from error
    finally:
        connection.close()


def _in_use(target: Path, error: Exception) -> BackupError:
    return BackupError(f"{target.name} is in use ({error}): stop the app first")


# -- PostgreSQL --------------------------------------------------------------------------------


def _libpq_environment(url: URL) -> dict[str, str]:
    """Connection parameters for pg_dump/pg_restore (the password never on a command line)."""
    environment = dict(os.environ)
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    for name, value in values.items():
        if value:
            environment[name] = str(value)
    query = {k: v if isinstance(v, str) else v[0] for k, v in url.query.items()}
    for parameter, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("application_name", "PGAPPNAME"),
    ):
        if parameter in query:
            environment[variable] = query[parameter]
    return environment


def server_major_version() -> int:
    from vaikuttavuus.extensions import db

    with db.engine.connect() as connection:
        return int(connection.scalar(text("SHOW server_version_num")) or 0) // 10000


def client_program(name: str, server_major: int) -> str:
    """``pg_dump``/``pg_restore`` of the server's major version (a newer one also works; an
    older one refuses to dump a newer server)."""
    versioned = Path(f"/usr/lib/postgresql/{server_major}/bin/{name}")
    if versioned.exists():
        return str(versioned)
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL {server_major} client programs "
            f"(Debian: postgresql-client-{server_major})"
        )
    output = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)(?:\.\d+)?", output.stdout)
    if match and int(match.group(1)) < server_major:
        raise BackupError(
            f"{found} is version {match.group(1)}, older than the server ({server_major})"
        )
    return found


def _run(command: list[str], url: URL) -> None:
    result = subprocess.run(
        command, env=_libpq_environment(url), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed:\n{result.stderr.strip()[-2000:]}")
    if result.stderr.strip():
        click.echo(result.stderr.strip(), err=True)


def _backup_postgresql(url: URL, out: Path) -> dict[str, Any]:
    """``pg_dump`` of one snapshot, the one a transaction of ours exported and counts in: the
    sidecar's row counts are exactly what the dump holds, however busy the app is."""
    from vaikuttavuus.extensions import db

    major = server_major_version()
    pg_dump = client_program("pg_dump", major)
    temporary = Path(tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")[1])
    try:
        with db.engine.connect() as connection:
            connection.exec_driver_sql(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            )
            snapshot = str(connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
            counts = row_counts(connection)
            revision = _revision_of(connection)
            # The exported snapshot lives as long as this transaction: dump while it is open.
            _run(
                [pg_dump, "--format=custom", "--file", str(temporary), "--no-password",
                 f"--snapshot={snapshot}"],
                url,
            )  # fmt: skip
            connection.rollback()
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        temporary.replace(out)
        _fsync_directory(out.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return {
        "server_major_version": major,
        "pg_dump": pg_dump,
        "row_counts": counts,
        "schema_revision": revision,
        "snapshot": snapshot,
    }


def _restore_postgresql(url: URL, file: Path) -> None:
    from vaikuttavuus.extensions import db

    major = server_major_version()
    pg_restore = client_program("pg_restore", major)
    listing = subprocess.run(
        [pg_restore, "--list", str(file)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise BackupError(f"{file.name} is not a pg_dump archive: {listing.stderr.strip()}")
    db.session.remove()
    db.engine.dispose()
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-password",
            "--dbname",
            str(url.database),
            str(file),
        ],
        url,
    )


COMMANDS: list[click.Command] = [backup_command, restore_command]
