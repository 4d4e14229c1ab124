"""The benchmark's load generator counts requests, successes and errors correctly against a tiny
in-process HTTP server (no timing is asserted)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import Answer, Request, run_load, status_is


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        self.server.seen[self.path] += 1  # type: ignore[attr-defined]
        status = 500 if self.path.startswith("/fail") else 200
        body = f"page {self.path}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = self.rfile.read(length).decode()
        self.server.seen[f"POST {self.path} {form}"] += 1  # type: ignore[attr-defined]
        self.send_response(302)
        self.send_header("Location", "/thanks")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.seen = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _port(server: ThreadingHTTPServer) -> int:
    return int(server.server_address[1])


def test_sends_exactly_max_requests_cycling_through_the_paths(
    server: ThreadingHTTPServer,
) -> None:
    requests = [Request("GET", "/a"), Request("GET", "/b")]
    result = run_load(
        "127.0.0.1",
        _port(server),
        requests,
        concurrency=4,
        max_requests=50,
        max_seconds=60,
        check=status_is(200),
    )
    assert result.sent == 50
    assert result.ok == 50
    assert result.errors == 0
    assert result.statuses == Counter({200: 50})
    assert len(result.latencies) == 50
    assert server.seen == Counter({"/a": 25, "/b": 25})  # type: ignore[attr-defined]
    figures = result.figures("bare_")
    assert figures["bare_requests"] == 50
    assert figures["bare_errors"] == 0
    assert figures["bare_p95_ms"] is not None
    assert figures["bare_statuses"] == {"200": 50}


def test_distinct_requests_are_each_sent_once(server: ThreadingHTTPServer) -> None:
    posts = [Request("POST", "/submit", form={"n": str(i)}, tag=i) for i in range(30)]
    tags: list[int] = []
    lock = threading.Lock()

    def remember(answer: Answer) -> None:
        with lock:
            tags.append(answer.request.tag)

    result = run_load(
        "127.0.0.1",
        _port(server),
        posts,
        concurrency=3,
        max_requests=len(posts),
        max_seconds=60,
        check=lambda a: a.status == 302 and a.headers["location"] == "/thanks",
        on_response=remember,
    )
    assert result.ok == result.sent == 30
    assert sorted(tags) == list(range(30))
    assert sum(server.seen.values()) == 30  # type: ignore[attr-defined]
    assert all(count == 1 for count in server.seen.values())  # type: ignore[attr-defined]


def test_unexpected_statuses_count_as_errors(server: ThreadingHTTPServer) -> None:
    requests = [Request("GET", "/ok"), Request("GET", "/fail")]
    result = run_load(
        "127.0.0.1",
        _port(server),
        requests,
        concurrency=2,
        max_requests=20,
        max_seconds=60,
        check=status_is(200),
    )
    assert result.sent == 20
    assert result.ok == 10
    assert result.errors == 10
    assert result.statuses == Counter({200: 10, 500: 10})


def test_connections_closed_by_the_server_are_reopened(server: ThreadingHTTPServer) -> None:
    result = run_load(
        "127.0.0.1",
        _port(server),
        [Request("GET", "/close")],
        concurrency=2,
        max_requests=12,
        max_seconds=60,
        check=status_is(200),
        keep_body=True,
    )
    assert result.ok == result.sent == 12
    assert result.errors == 0


def test_bodies_are_kept_only_when_asked(server: ThreadingHTTPServer) -> None:
    bodies: list[bytes] = []
    for keep in (True, False):
        run_load(
            "127.0.0.1",
            _port(server),
            [Request("GET", "/x")],
            concurrency=1,
            max_requests=1,
            max_seconds=60,
            check=status_is(200),
            on_response=lambda answer: bodies.append(answer.body),
            keep_body=keep,
        )
    assert bodies == [b"page /x", b""]


def test_a_refused_connection_is_an_error_not_a_crash() -> None:
    from bench.servers import free_port

    result = run_load(
        "127.0.0.1",
        free_port(),
        [Request("GET", "/")],
        concurrency=2,
        max_requests=4,
        max_seconds=60,
        check=status_is(200),
        timeout=5,
    )
    assert result.sent == 4
    assert result.errors == 4
    assert result.ok == 0
    assert result.exceptions["ConnectionRefusedError"] == 4


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="no requests"):
        run_load("127.0.0.1", 1, [], concurrency=1, max_requests=1, max_seconds=1, check=bool)
    with pytest.raises(ValueError, match="concurrency"):
        run_load(
            "127.0.0.1",
            1,
            [Request("GET", "/")],
            concurrency=0,
            max_requests=1,
            max_seconds=1,
            check=bool,
        )
