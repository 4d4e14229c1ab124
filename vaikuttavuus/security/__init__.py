"""Authentication, authorisation, sessions and HTTP security headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask, Response, current_app, flash, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_talisman import Talisman
from sqlalchemy import select

from vaikuttavuus.extensions import csrf, db, limiter, login_manager
from vaikuttavuus.models import User
from vaikuttavuus.security.access import ACCESS_ATTRIBUTE, PUBLIC, enforce_access

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": ["'self'", "data:"],
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

talisman = Talisman()


def init_app(app: Flask) -> None:
    # Access is decided before the CSRF check, so a role without access gets 403 (not 400).
    app.before_request(_expire_sessions)
    app.before_request(enforce_access)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Log in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    limiter.init_app(app)
    production = bool(app.config["PRODUCTION"])
    talisman.init_app(
        app,
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=bool(app.config["SESSION_COOKIE_SECURE"]),
        session_cookie_http_only=True,
        content_security_policy=CONTENT_SECURITY_POLICY,
        referrer_policy="no-referrer",
        frame_options="DENY",
        permissions_policy={"geolocation": "()", "camera": "()", "microphone": "()"},
    )
    # The static folder and Talisman's own endpoints are public.
    static_view = app.view_functions.get("static")
    if static_view is not None:
        setattr(static_view, ACCESS_ATTRIBUTE, PUBLIC)
    app.after_request(_no_store_for_personal_pages)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    identifier, _, nonce = user_id.partition(":")
    if not identifier.isdigit():
        return None
    user = db.session.get(User, int(identifier))
    if user is None or not user.active or user.session_nonce != nonce:
        return None
    return user


def start_session(user: User) -> None:
    """Called at login: a fresh session (new id), idle and absolute expiry armed."""
    session.clear()
    session.permanent = True
    session["login_at"] = datetime.now(UTC).isoformat()


def _expire_sessions() -> Response | None:
    """Absolute session lifetime; the idle lifetime is the permanent-session lifetime."""
    if not current_user.is_authenticated:
        return None
    started = session.get("login_at")
    limit: timedelta = current_app.config["SESSION_ABSOLUTE_LIFETIME"]
    if started is None or datetime.now(UTC) - datetime.fromisoformat(started) > limit:
        logout_user()
        session.clear()
        flash(_l("Your session has expired. Please log in again."), "info")
        return redirect(url_for("auth.login", next=request.path))
    return None


def _no_store_for_personal_pages(response: Response) -> Response:
    """Pages with personal data must not be kept in shared caches or the back-forward cache."""
    if request.endpoint not in (None, "static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))
