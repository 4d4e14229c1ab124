"""What happens when a rate limit is breached: a log line, and one audit event per window.

Flask-Limiter calls ``on_breach`` for every refused request. A guessing attack makes many of
them, and the audit trail is append-only, so the audit event is written only for the first
breach of each client's limit window (remembered in the limiter's own storage, which is shared
between workers when ``RATELIMIT_STORAGE_URI`` points at a shared store such as Redis).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_limiter import RequestLimit

from vaikuttavuus.extensions import db, limiter


def first_breach_in_window(request_limit: RequestLimit) -> bool:
    """True for the first refused request of a client in the current limit window."""
    expiry = max(int(request_limit.limit.get_expiry()), 1)
    key = f"breach-noted/{request_limit.key}/{request_limit.reset_at}"
    return int(limiter.storage.incr(key, expiry)) == 1


def note_breach(
    request_limit: RequestLimit, action: str, *, actor: str | None = None, **details: Any
) -> None:
    """Log a refused request; audit the first one of the window and commit it at once.

    The request itself is answered 429 and its unit of work rolled back, so the audit event is
    committed here, before anything else of the request has been written.
    """
    from vaikuttavuus.services import audit

    current_app.logger.warning(
        "%s: %s from %s on %s", action, request_limit.limit, request.remote_addr, request.endpoint
    )
    if not first_breach_in_window(request_limit):
        return
    audit.record(
        action,
        object_type="rate_limit",
        object_id=str(request_limit.limit),
        actor=actor,
        details={
            "endpoint": request.endpoint,
            "window_resets_at": request_limit.reset_at,
            **details,
        },
    )
    db.session.commit()
