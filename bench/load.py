"""A small HTTP/1.1 load generator for loopback benchmarks.

``concurrency`` threads each keep one ``http.client`` connection alive and send requests taken
from a shared sequence until ``max_requests`` have been sent or ``max_seconds`` have passed,
whichever comes first. Every request is timed from sending to the last byte of the answer; the
result has the throughput, the latency percentiles and what went wrong. A connection the server
closed between two requests (keep-alive timeout) is reopened and the request sent once more; a
failure on a fresh connection counts as an error.

The generator only reads answers, it never follows redirects: the caller's ``check`` decides
whether an answer counts as a success, and an optional ``on_response`` sees every answer (e.g. to
pick a form token out of a page).
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np


@dataclass(frozen=True)
class Request:
    """One request to send: method, path, optional form body."""

    method: str
    path: str
    form: dict[str, str] | None = None
    tag: Any = None  # the caller's reference (e.g. the patient link), handed to the callbacks
    headers: tuple[tuple[str, str], ...] = ()  # e.g. (("Cookie", "…"),) for a logged-in user

    def encoded(self) -> tuple[bytes | None, dict[str, str]]:
        if self.form is None:
            return None, dict(self.headers)
        body = urlencode(self.form).encode("ascii")
        return body, {"Content-Type": "application/x-www-form-urlencoded", **dict(self.headers)}


@dataclass(frozen=True)
class Answer:
    """What came back for a request (the body is kept only when ``keep_body`` is set)."""

    request: Request
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


Check = Callable[[Answer], bool]
"""Whether an answer is a success (e.g. ``status == 200``)."""


def status_is(*statuses: int) -> Check:
    """A check that accepts the given HTTP statuses."""
    wanted = frozenset(statuses)
    return lambda answer: answer.status in wanted


@dataclass
class LoadResult:
    """Counts and timings of one load run."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    reconnects: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    concurrency: int = 0

    @property
    def per_s(self) -> float:
        """Successful requests per second of wall-clock time."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(np.asarray(self.latencies), q) * 1000.0)

    def figures(self, prefix: str = "") -> dict[str, Any]:
        """Flat figures for ``results.json`` (``prefix`` e.g. ``bare_``)."""
        p50, p95, p99 = (self.percentile_ms(q) for q in (50, 95, 99))
        return {
            f"{prefix}per_s": round(self.per_s, 1),
            f"{prefix}p50_ms": None if p50 is None else round(p50, 2),
            f"{prefix}p95_ms": None if p95 is None else round(p95, 2),
            f"{prefix}p99_ms": None if p99 is None else round(p99, 2),
            f"{prefix}requests": self.sent,
            f"{prefix}errors": self.errors,
            f"{prefix}seconds": round(self.seconds, 2),
            f"{prefix}statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class _Shared:
    """The request counter, the deadline and the result, shared by the client threads."""

    def __init__(self, requests: Sequence[Request], max_requests: int, max_seconds: float) -> None:
        self.requests = requests
        self.max_requests = max_requests
        self.deadline = time.perf_counter() + max_seconds
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.result = LoadResult()

    def next_request(self) -> Request | None:
        with self.lock:
            number = next(self.counter)
        if number >= self.max_requests or time.perf_counter() >= self.deadline:
            return None
        return self.requests[number % len(self.requests)]


class _Client:
    """One keep-alive connection, used by one thread."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def send(self, request: Request) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers, body, reconnected); raises on a failure of a fresh connection."""
        body, headers = request.encoded()
        reused = self.connection is not None
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            try:
                self.connection.request(request.method, request.path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2 or not reused:
                    raise
                continue  # the server closed an idle keep-alive connection: send once more
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            if answer_headers.get("connection", "").lower() == "close":
                self.close()
            return response.status, answer_headers, data, attempt == 2
        raise AssertionError("unreachable")


def run_load(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    check: Check,
    on_response: Callable[[Answer], None] | None = None,
    keep_body: bool = False,
    timeout: float = 30.0,
) -> LoadResult:
    """Send up to ``max_requests`` requests (cycling through ``requests``) with ``concurrency``
    keep-alive connections for at most ``max_seconds``; returns counts and timings.

    Requests are taken in order, so a sequence of distinct requests no longer than
    ``max_requests`` sends each one exactly once.
    """
    if not requests:
        raise ValueError("no requests to send")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    shared = _Shared(requests, max_requests, max_seconds)
    result = shared.result
    result.concurrency = concurrency

    def worker() -> None:
        client = _Client(host, port, timeout)
        latencies: list[float] = []
        try:
            while (request := shared.next_request()) is not None:
                started = time.perf_counter()
                try:
                    status, headers, body, reconnected = client.send(request)
                except (OSError, http.client.HTTPException) as error:
                    client.close()
                    with shared.lock:
                        result.sent += 1
                        result.errors += 1
                        result.exceptions[type(error).__name__] += 1
                    continue
                elapsed = time.perf_counter() - started
                answer = Answer(request, status, headers, body if keep_body else b"", elapsed)
                good = check(answer)
                if on_response is not None:
                    on_response(answer)
                latencies.append(elapsed)
                with shared.lock:
                    result.sent += 1
                    result.statuses[status] += 1
                    result.reconnects += int(reconnected)
                    if good:
                        result.ok += 1
                    else:
                        result.errors += 1
        finally:
            client.close()
            with shared.lock:
                result.latencies.extend(latencies)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result
