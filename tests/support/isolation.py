"""Give every test-client request a fresh ``flask.g``, as in production.

The shared ``app`` fixture keeps an application context open for the whole test (so tests can
use ``db.session``). Flask then reuses that context, and its ``g``, for every request of the
test client, so anything a request caches in ``g`` — Flask-Login's current user above all —
leaks into the next request and can hide session bugs. The hook below empties ``g`` before
anything else of a request runs.
"""

from __future__ import annotations

from flask import Flask, g


def fresh_globals_per_request(app: Flask) -> None:
    def clear_request_globals() -> None:
        for name in list(vars(g)):
            delattr(g, name)

    hooks = app.before_request_funcs.setdefault(None, [])
    if not any(getattr(hook, "__name__", "") == "clear_request_globals" for hook in hooks):
        hooks.insert(0, clear_request_globals)
