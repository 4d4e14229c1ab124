"""Management pages: key figures and PDF summaries per pilot (aggregates only: never a row
about a person, and small groups hidden)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

from vaikuttavuus.database import read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.management_report import LANGUAGES, management_overview
from vaikuttavuus.views.common import require_pilot, visible_pilots
from vaikuttavuus.views.pilot import management_pdf_response, period_from_request

bp = Blueprint("management", __name__, url_prefix="/management")


@bp.get("/")
@allow(Role.MANAGEMENT)
def index() -> str:
    pilots = visible_pilots()
    codes = [pilot.code for pilot in pilots]
    chosen = request.args.get("pilot")
    pilot = next((p for p in pilots if p.code == chosen), pilots[0] if pilots else None)
    period = period_from_request()
    language = request.args.get("lang_pdf")
    language = language if language in LANGUAGES else current_language()
    overview = None
    version = None
    with read_snapshot() as snapshot:
        if pilot is not None:
            analysis = CohortAnalysis(db.session, pilot, Filters(period=period))
            overview = management_overview(analysis, current_language())
            version = snapshot.data_version(pilot.id)
        return render_template(
            "management/index.html",
            pilots=pilots,
            codes=codes,
            pilot=pilot,
            period=period,
            pdf_language=language,
            overview=overview,
            data_version=version,
        )


@bp.get("/<pilot_code>/summary.pdf")
@allow(Role.MANAGEMENT)
def summary_pdf(pilot_code: str) -> Response:
    pilot = require_pilot(pilot_code)
    return management_pdf_response(pilot, audience="management")
