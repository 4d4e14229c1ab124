"""Through the real server with two worker processes (``vaikuttavuus serve --workers 2``):
the documented limits hold across workers, a valid link is never refused, no link token
reaches the access log however the path is encoded, and no ``Server`` header is sent
(issue 16, items 4 and 5).

The audit found, with the default two workers and per-process counters, 17 failed logins and
34 link misses before the first 429 (documented: 10 and 20), and the full token in the access
log for ``GET /r%2F<token>`` and ``GET /%72/<token>``, both of which served the patient page.
Each request here goes on a new connection, so the two workers share the requests.
"""

from __future__ import annotations

import http.client
import re
from typing import Any

import requests
from flask import Flask

from tests.conftest import CSRF_FIELD
from tests.reliability.conftest import Server
from vaikuttavuus.security import tokens

CLOSE = {"Connection": "close"}


def _failed_login(base: str) -> int:
    session = requests.Session()
    page = session.get(f"{base}/auth/login", headers=CLOSE, timeout=30)
    assert "Server" not in page.headers
    match = CSRF_FIELD.search(page.text)
    assert match
    response = session.post(
        f"{base}/auth/login",
        data={"username": "vartija", "password": "arvaus", "csrf_token": match.group(1)},
        headers=CLOSE,
        allow_redirects=False,
        timeout=30,
    )
    return response.status_code


def _raw_get(server: Server, target: str) -> tuple[int, str, dict[str, str]]:
    """A GET with the request target exactly as given (``requests`` would normalise it)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", target, headers=CLOSE)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace"), dict(response.headers)
    finally:
        connection.close()


def test_limits_hold_across_workers_and_tokens_stay_out_of_the_log(
    app: Flask, make_user: Any, enrol_patient: Any, patient_link: Any, server: Server
) -> None:
    make_user("vartija", "clinician")
    token = patient_link(enrol_patient(index_offset_days=10))
    server.workers, server.threads = 2, 2
    server.start()
    base = server.url

    # Failed logins from one address: 10 a minute, whichever worker answers.
    statuses = [_failed_login(base) for _ in range(14)]
    assert statuses == [200] * 10 + [429] * 4

    # A link in another spelling is not served, and leaves no token in the log; the first two
    # reach the link pages and count as misses, the third (encoded twice) matches no page.
    for target in (f"/r%2F{token}", f"/%72/{token}", f"/%2572/{token}/1"):
        status, body, headers = _raw_get(server, target)
        assert status == 404, target
        assert 'name="form_token"' not in body and "Server" not in headers
    # Misses from one address: 20 in 10 minutes, whichever worker answers …
    misses = [_raw_get(server, f"/r/{tokens.new_token()}")[0] for _ in range(20)]
    assert misses == [404] * 18 + [429] * 2
    # … while the valid link is still served to the throttled address.
    for suffix in ("", "/1", "/review"):
        assert _raw_get(server, f"/r/{token}{suffix}")[0] == 200
    server.stop()

    log = server.log_text()
    assert '"GET /r/… HTTP/1.1" 200' in log and '"GET /r/…/1 HTTP/1.1" 200' in log
    assert log.count('"GET /r/… HTTP/1.1" 404') >= 18
    assert token not in log and not re.search(re.escape(token[:16]), log)
