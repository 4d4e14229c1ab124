"""Writing the append-only audit trail: every view and export of personal data, every change."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent


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
        actor=actor or "system",
        role=role,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        person_id=person_id,
        pilot_code=pilot_code,
        ip_address=request.remote_addr if has_request_context() else None,
        details=details or {},
    )
    db.session.add(event)
    return event
