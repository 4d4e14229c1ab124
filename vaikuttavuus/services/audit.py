"""Writing the append-only audit trail: every view and export of personal data, every change.

This is the single place audit events are written. The trail is kept for years and cannot be
corrected, so nothing typed by a person goes into it in clear: every text (details, object
id, actor) has identity-code-shaped substrings masked before the event is added, whatever the
caller passed. Callers record facts (counts, ids, that a reason was given), never free text.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from vaikuttavuus.domain.identity import mask_identity_codes
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent


def masked(value: Any) -> Any:
    """``value`` (text, or dicts and lists of them, any depth) with identity codes masked."""
    if isinstance(value, str):
        return mask_identity_codes(value)
    if isinstance(value, dict):
        return {masked(key): masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    return value


def record(
    action: str,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
    person_id: int | None = None,
    pilot_code: str | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the current unit of work (committed with the request)."""
    user_id = None
    role = None
    if has_request_context() and current_user and current_user.is_authenticated:
        user_id = current_user.id
        role = current_user.role
        actor = actor or current_user.username
    event = AuditEvent(
        user_id=user_id,
        actor=masked(actor or "system"),
        role=role,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else masked(str(object_id)),
        person_id=person_id,
        pilot_code=pilot_code,
        ip_address=request.remote_addr if has_request_context() else None,
        details=masked(details or {}),
    )
    db.session.add(event)
    return event
