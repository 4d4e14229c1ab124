"""Front page (sends each role to its own start page), the health check and the site icon."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Blueprint, current_app, jsonify, redirect, url_for
from flask_login import current_user
from sqlalchemy import text
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.models import Role
from vaikuttavuus.security.access import public

bp = Blueprint("main", __name__)

START_PAGES = {
    Role.CLINICIAN: "clinician.index",
    Role.PILOT_LEAD: "pilot.index",
    Role.MANAGEMENT: "management.index",
    Role.ADMIN: "admin.users",
}


@bp.get("/")
@public
def index() -> Response:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(START_PAGES[Role(current_user.role)]))


@bp.get("/healthz")
@public
def health() -> Response:
    """For load balancers and monitoring: the app answers and the database is reachable."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")


@cache
def _favicon() -> bytes:
    return (Path(current_app.static_folder or "static") / "favicon.ico").read_bytes()


@bp.get("/favicon.ico")
@public
def favicon() -> Response:
    """The site icon where a browser looks for it without a ``<link rel=icon>`` (files, PDFs
    opened in the browser)."""
    # Not cached (every page but the static folder is no-store); pages link the static SVG.
    return Response(_favicon(), mimetype="image/vnd.microsoft.icon")
