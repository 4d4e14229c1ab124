"""Every route declares who may use it; anything undeclared is refused (deny by default).

``@allow("clinician", "pilot_lead")`` admits logged-in users with one of those roles;
``@public`` marks routes anyone may use (login page, patient links with their own checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, request
from flask_login import current_user

from vaikuttavuus.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])

ACCESS_ATTRIBUTE = "__vaikuttavuus_access__"
PUBLIC = "public"


def allow(*roles: str) -> Callable[[F], F]:
    """Admit authenticated users whose role is one of ``roles``."""
    if not roles:
        raise ValueError("allow() needs at least one role; use @public for open routes")

    def decorate(view: F) -> F:
        setattr(view, ACCESS_ATTRIBUTE, frozenset(roles))
        return view

    return decorate


def public(view: F) -> F:
    """Admit anyone; the view does its own checks (e.g. a patient link's token)."""
    setattr(view, ACCESS_ATTRIBUTE, PUBLIC)
    return view


def declared_access(app: Flask, endpoint: str) -> frozenset[str] | str | None:
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    return getattr(view, ACCESS_ATTRIBUTE, None)


def enforce_access() -> Any:
    """``before_request`` hook: apply the route's declaration; refuse undeclared routes."""
    endpoint = request.endpoint
    if endpoint is None:  # 404 or 405: nothing to protect
        return None
    access = declared_access(current_app, endpoint)
    if access is None:
        current_app.logger.error("route %s has no access declaration; refused", endpoint)
        abort(403)
    if access == PUBLIC:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role not in access:
        abort(403)
    return None
