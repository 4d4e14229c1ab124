"""Front page (sends each role to its own start page), the health check and the site icon."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Blueprint, current_app, jsonify, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from vaikuttavuus.health import run_checks
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
def health() -> tuple[Response, int] | Response:
    """For load balancers and monitoring: each dependency (the database; the job queue once
    there is one) with its state and how long the check took. 200 when all work, else 503
    with ``Retry-After`` (see docs/operations.md, "Monitoring")."""
    results = run_checks()
    healthy = all(result.ok for result in results)
    response = jsonify(
        status="ok" if healthy else "unavailable",
        checks={result.name: result.to_dict() for result in results},
    )
    if healthy:
        return response
    response.headers["Retry-After"] = str(current_app.config.get("RETRY_AFTER_SECONDS", 60))
    return response, 503


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
