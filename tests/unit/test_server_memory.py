"""gunicorn workers hand freed memory back to the system: after a long request, and after
any request once :data:`~vaikuttavuus.server.TRIM_INTERVAL_SECONDS` have passed since the
last time; each worker limits its malloc arenas before its threads start."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from vaikuttavuus import server


def test_freed_memory_is_returned_after_long_requests_and_now_and_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []
    monkeypatch.setattr(server, "_MALLOC_TRIM", lambda pad: trims.append(pad) or 1)
    monkeypatch.setattr(server, "_LAST_TRIM", [time.monotonic()])

    def request(seconds: float) -> None:
        started = SimpleNamespace(vaikuttavuus_started=time.monotonic() - seconds)
        server._return_freed_memory(None, started, {}, None)

    request(0.01)
    assert trims == []  # a short request just after the last trim
    request(server.LONG_REQUEST_SECONDS + 0.1)
    assert trims == [0]
    request(0.01)
    assert trims == [0]
    server._LAST_TRIM[0] -= server.TRIM_INTERVAL_SECONDS
    request(0.01)
    assert trims == [0, 0]  # the interval has passed


def test_workers_limit_their_malloc_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(server, "_MALLOPT", lambda option, value: calls.append((option, value)))
    options = server.gunicorn_options(host="127.0.0.1", port=8000, workers=2, threads=4)
    options["post_fork"](None, None)
    assert calls == [(server._M_ARENA_MAX, server.MALLOC_ARENAS)]
    assert options["post_request"] is server._return_freed_memory
