"""Pilot-lead pages: the cohort at a glance and its summary PDF."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Role
from vaikuttavuus.pdf import render_pdf
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.cohort_summary import cohort_summary
from vaikuttavuus.services.summary_charts import summary_chart
from vaikuttavuus.views.common import require_pilot, visible_pilots

bp = Blueprint("pilot", __name__, url_prefix="/pilot")


def period_from_request() -> tuple[date | None, date | None]:
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD``; anything unparseable is ignored."""

    def parse(name: str) -> date | None:
        try:
            return date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None

    return parse("from"), parse("to")


@bp.get("/")
@allow(Role.PILOT_LEAD)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("pilot.overview", pilot_code=pilots[0].code))
    return render_template("pilot/index.html", pilots=pilots)


@bp.get("/<pilot_code>/")
@allow(Role.PILOT_LEAD)
def overview(pilot_code: str) -> str:
    pilot = require_pilot(pilot_code)
    period = period_from_request()
    summary = cohort_summary(db.session, pilot, current_language(), period)
    return render_template(
        "pilot/overview.html",
        pilot=pilot,
        summary=summary,
        chart=summary_chart(summary),
        period=period,
    )


@bp.get("/<pilot_code>/summary.pdf")
@allow(Role.PILOT_LEAD)
def summary_pdf(pilot_code: str) -> Response:
    pilot = require_pilot(pilot_code)
    return cohort_summary_pdf_response(pilot_code=pilot.code, audience="pilot")


def cohort_summary_pdf_response(*, pilot_code: str, audience: str) -> Response:
    """The cohort summary as a PDF download (shared by the pilot and management pages)."""
    pilot = require_pilot(pilot_code)
    language = request.args.get("lang_pdf") or current_language()
    if language not in ("fi", "sv", "en"):
        language = "fi"
    period = period_from_request()
    summary = cohort_summary(db.session, pilot, language, period)
    pdf = render_pdf(
        "cohort_summary.html",
        language,
        summary=summary,
        chart=summary_chart(summary),
        audience=audience,
    )
    audit.record(
        "export_pdf",
        object_type="cohort_summary",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={"language": language, "period": [str(p) if p else None for p in period]},
    )
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    filename = f"{pilot.code}-cohort-summary-{date.today().isoformat()}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
