"""The real server for the reliability tests: ``vaikuttavuus serve`` (gunicorn, several worker
processes with threads) in a subprocess of its own process group, on a free port, against the
test's database (a SQLite file or a PostgreSQL database), with enrolments and personal links
prepared through the services.

``VAIKUTTAVUUS_LOAD_SCALE`` sets the size: 1 (the default, for ``scripts/test``) is a bounded
run of a few dozen patients; ``scripts/bench`` runs 25 and more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
LOAD_SCALE = max(float(os.environ.get("VAIKUTTAVUUS_LOAD_SCALE", "1")), 0.1)
RESULTS = os.environ.get("VAIKUTTAVUUS_RELIABILITY_RESULTS")  # a JSON file to append figures to


def scaled(n: int) -> int:
    return max(int(n * LOAD_SCALE), 2)


@dataclass
class Server:
    """A running ``vaikuttavuus serve`` (gunicorn master and its workers)."""

    database_url: str
    instance: Path
    log: Path
    workers: int = 3
    threads: int = 4
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self.port = free_port()
        self.starts += 1
        self.environment = {
            **os.environ,
            "VAIKUTTAVUUS_INSTANCE": str(self.instance),
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "reliability-secret-key",
            "PSEUDONYM_KEY": "test-pseudonym-key",
            "PYTHONUNBUFFERED": "1",
            # no worker processes here: the analysis snapshots are built in the request
            "JOB_QUEUE_URL": "immediate",
        }
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vaikuttavuus.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers),
             "--threads", str(self.threads)],
            cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in {timeout} s:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the master and every worker at once (no graceful shutdown)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return  # every process of the group is gone
            time.sleep(0.05)
        raise RuntimeError("server processes survived SIGKILL")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server (not yet started) on the test's database; stopped at the end."""
    from vaikuttavuus.extensions import db

    instance = tmp_path / "instance"
    instance.mkdir()
    db.session.remove()
    served = Server(database_url=database_url, instance=instance, log=tmp_path / "server.log")
    try:
        yield served
    finally:
        served.stop()
        db.session.remove()


def record_figures(name: str, backend: str, figures: dict[str, Any]) -> None:
    """Print the measured figures and, when asked, append them to a JSON-lines file."""
    line = {"test": name, "backend": backend, "scale": LOAD_SCALE, **figures}
    print(f"\n{json.dumps(line)}")
    if RESULTS:
        with Path(RESULTS).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
