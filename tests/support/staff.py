"""Logging staff in from tests whose app context outlives each request."""

from __future__ import annotations

from flask import g
from flask.testing import FlaskClient

from tests.conftest import login


def forget_request_globals() -> None:
    """The tests' app context outlives each request, so ``g`` would carry the previous
    request's user, CSRF token and locale into the next one (even another client's): the CSRF
    token of the session that login replaced would never reach the new session."""
    for name in ("csrf_token", "_login_user", "_flask_babel"):
        g.pop(name, None)


def staff_login(client: FlaskClient, username: str) -> None:
    assert login(client, username).status_code == 302
    forget_request_globals()
