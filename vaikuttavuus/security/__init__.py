"""Authentication, authorisation, sessions and HTTP security headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_talisman import Talisman
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import csrf, db, limiter, login_manager
from vaikuttavuus.models import User
from vaikuttavuus.security import formdata
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

# Database ids are 32-bit integers: a larger number in a URL is simply not found (404) instead
# of overflowing the database driver.
MAX_URL_INTEGER = 2**31 - 1


class BoundedIntegerConverter(IntegerConverter):
    """``<int:…>`` limited to the range of the database's integer keys."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_URL_INTEGER)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntegerConverter
    trusted_proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if trusted_proxies > 0:
        # Behind a TLS-terminating reverse proxy: take the client address, scheme and host
        # from the X-Forwarded-* headers set by that many proxies (and from no one else).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=trusted_proxies,
            x_proto=trusted_proxies,
            x_host=trusted_proxies,
            x_port=trusted_proxies,
        )
    # Access is decided before the CSRF check, so a role without access gets 403 (not 400).
    app.before_request(_expire_sessions)
    app.before_request(enforce_access)
    app.before_request(_require_password_change)
    app.before_request(_refuse_nul_characters)
    csrf.init_app(app)
    formdata.install()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Log in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    limiter.init_app(app)
    production = bool(app.config["PRODUCTION"])
    # One Talisman per app: it keeps its settings on the instance, so a shared instance would
    # let the last app created decide for every app in the process.
    app.extensions["talisman"] = Talisman(
        app,
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=bool(app.config["SESSION_COOKIE_SECURE"]),
        session_cookie_http_only=True,
        content_security_policy=CONTENT_SECURITY_POLICY,
        # Never a referrer to other sites; within the site the browser sends one, which
        # Flask-WTF's strict HTTPS check requires of every form post (patient pages, whose
        # links carry the token, narrow this to no-referrer in their own template).
        referrer_policy="same-origin",
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


PASSWORD_CHANGE_REQUIRED = "password_change_required"
"""Session flag: the password used to log in fails the password policy (set at login)."""
_WHILE_PASSWORD_CHANGE_REQUIRED = frozenset({"auth.change_password", "auth.logout", "static"})


def _require_password_change() -> Response | None:
    """A user who logged in with a password the policy now refuses sees only the password
    form (and can log out) until they have chosen a new one (OWASP ASVS 2.1.7)."""
    if not session.get(PASSWORD_CHANGE_REQUIRED) or not current_user.is_authenticated:
        return None
    if request.endpoint in _WHILE_PASSWORD_CHANGE_REQUIRED:
        return None
    return redirect(url_for("auth.change_password"))


def _refuse_nul_characters() -> None:
    """No text anywhere in the app may contain a NUL character (PostgreSQL cannot store one):
    a request carrying one in its path, query or form is refused as a bad request."""
    values: list[str] = [request.path]
    for multidict in (request.args, request.form):
        for key, items in multidict.lists():
            values.append(key)
            values.extend(items)
    values.extend(f.filename or "" for f in request.files.values())
    if any("\x00" in value for value in values):
        abort(400)


def _no_store_for_personal_pages(response: Response) -> Response:
    """Pages with personal data must not be kept in shared caches or the back-forward cache."""
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))
