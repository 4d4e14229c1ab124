"""A throwaway PostgreSQL server for tests and benchmarks, from Debian's binaries.

PostgreSQL refuses to run as root, and these machines run everything as root: the server is
started as the ``postgres`` user (``runuser``) on a temporary data directory and a free port,
and reached over loopback with trust authentication (loopback only, throwaway data).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are missing or the server did not start."""


def _bin_dir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "pg_ctl").exists() and (candidate / "initdb").exists():
            return candidate
    raise PostgresUnavailableError(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
        "install the Debian package 'postgresql' (scripts/test does this)."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path
    options: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, text=True,
        )
        return result.stdout

    def halt(self) -> None:
        """Stop the server but keep its data (an outage); :meth:`resume` starts it again."""
        subprocess.run(
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                          "-w", "stop"]),
            check=True, capture_output=True,
        )  # fmt: skip

    def resume(self) -> None:
        """Start the halted server again on the same port and data."""
        result = subprocess.run(
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.root / "server.log"), "-w", "-t", "60", "-o",
                          " ".join(self.options), "start"]),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresUnavailableError(f"PostgreSQL did not start again: {result.stderr}")

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop"]),
            check=False, capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start(durable: bool = False) -> PostgresServer:
    """Start a server; ``durable=False`` turns fsync off (fine for throwaway test data)."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="vaikuttavuus-pg-"))
    root.chmod(0o755)
    data = root / "data"
    sockets = root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    init = subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]),
        capture_output=True, text=True, check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailableError(f"initdb failed: {init.stderr.strip()}")
    port = free_port()
    options = [
        f"-p {port}",
        "-c listen_addresses=127.0.0.1",
        f"-c unix_socket_directories={sockets}",
        "-c max_connections=200",
        "-c shared_buffers=128MB",
        "-c timezone=UTC",  # like a server in a UTC container, whatever the tests' TZ
    ]
    if not durable:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    log = root / "server.log"
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, "postgres", "postgres")
    started = subprocess.run(
        _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                      "-t", "60", "-o", " ".join(options), "start"]),
        capture_output=True, text=True, check=False,
    )
    if started.returncode != 0:
        details = log.read_text() if log.exists() else started.stderr
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailableError(f"PostgreSQL did not start: {details.strip()[-2000:]}")
    return PostgresServer(root=root, port=port, bin_dir=bin_dir, options=tuple(options))


@contextlib.contextmanager
def running(durable: bool = False) -> Iterator[PostgresServer]:
    server = start(durable=durable)
    try:
        yield server
    finally:
        server.stop()
