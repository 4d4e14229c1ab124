"""Management pages: aggregate figures and PDF summaries per pilot (never a row about a person)."""

from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.wrappers import Response

from vaikuttavuus.models import Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.views.common import visible_pilots
from vaikuttavuus.views.pilot import cohort_summary_pdf_response

bp = Blueprint("management", __name__, url_prefix="/management")


@bp.get("/")
@allow(Role.MANAGEMENT)
def index() -> str:
    return render_template("management/index.html", pilots=visible_pilots())


@bp.get("/<pilot_code>/summary.pdf")
@allow(Role.MANAGEMENT)
def summary_pdf(pilot_code: str) -> Response:
    return cohort_summary_pdf_response(pilot_code=pilot_code, audience="management")
