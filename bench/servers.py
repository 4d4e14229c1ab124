"""gunicorn servers for the HTTP scenarios, each in a subprocess (its own process group).

:func:`app_server` runs ``vaikuttavuus serve`` (the real command) on a free loopback port with
the run's instance folder and a database; :func:`hello_server` runs the bare Flask baseline
(:mod:`bench.hello`) with the same gunicorn options, workers and threads.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.results import ROOT


class ServerError(RuntimeError):
    """The server exited or did not answer in time."""


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A started server: its port, process and log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    host: str = "127.0.0.1"

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float, path: str = "/healthz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited:\n{self.log_tail()}")
            connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
            try:
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.2)
        raise ServerError(f"{self.name} did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server's process group (gunicorn stops its workers), then SIGKILL."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def _serve(
    name: str, command: list[str], env: dict[str, str], log: Path, timeout: float
) -> Iterator[ServerProcess]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    port = int(command[command.index("--port") + 1])
    server = ServerProcess(name=name, port=port, process=process, log=log)
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()


def app_server(
    env: dict[str, str], log: Path, *, workers: int, threads: int, timeout: float = 120.0
) -> contextlib.AbstractContextManager[ServerProcess]:
    """``vaikuttavuus serve`` with ``env`` (instance folder, ``DATABASE_URL``)."""
    command = [
        sys.executable, "-m", "vaikuttavuus.cli", "serve", "--host", "127.0.0.1",
        "--port", str(free_port()), "--workers", str(workers), "--threads", str(threads),
    ]  # fmt: skip
    return _serve("vaikuttavuus serve", command, env, log, timeout)


def hello_server(
    env: dict[str, str], log: Path, *, workers: int, threads: int, timeout: float = 60.0
) -> contextlib.AbstractContextManager[ServerProcess]:
    """The bare Flask baseline with the same gunicorn settings."""
    command = [
        sys.executable, "-m", "bench.hello", "--port", str(free_port()),
        "--workers", str(workers), "--threads", str(threads),
    ]  # fmt: skip
    return _serve("bare Flask", command, env, log, timeout)


WORKER_NICENESS = 10
"""The worker's ``nice`` value (systemd ``Nice=10`` in ``docs/operations.md``)."""


@contextlib.contextmanager
def worker_process(
    env: dict[str, str], log: Path, *, threads: int = 1, nice: int = WORKER_NICENESS
) -> Iterator[None]:
    """``vaikuttavuus worker`` with ``env`` (the analysis snapshots of the cohort pages and
    PDFs are built there, not in the web workers, as in production), at the lower CPU
    priority ``docs/operations.md`` recommends for a worker beside the web server; stopped
    with SIGTERM, then SIGKILL."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "nice", "-n", str(nice),
        sys.executable, "-m", "vaikuttavuus.cli", "worker", "--threads", str(threads),
    ]  # fmt: skip
    with log.open("ab") as stream:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        time.sleep(1.0)
        if process.poll() is not None:
            raise ServerError(f"vaikuttavuus worker stopped at once:\n{_tail(log)}")
        yield
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""
