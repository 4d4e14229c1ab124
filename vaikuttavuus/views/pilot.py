"""Pilot-lead pages: the cohort (filters, sections, the numbers of every figure as CSV) and its
PDF summaries."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import current_snapshot, read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Pilot, Role
from vaikuttavuus.queries import cohort_units
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit, snapshots
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.cohort_page import SECTIONS, DrawnPage, cohort_page
from vaikuttavuus.services.cohort_summary import cohort_summary_pdf_of, render_cohort_summary_pdf
from vaikuttavuus.services.cohort_tables import TableRequest, cohort_table, to_csv
from vaikuttavuus.services.definitions import pilot_spec
from vaikuttavuus.services.demo_data import demo_data_present
from vaikuttavuus.services.management_report import LANGUAGES
from vaikuttavuus.views.common import require_pilot, visible_pilots, with_data_version

bp = Blueprint("pilot", __name__, url_prefix="/pilot")
logger = logging.getLogger(__name__)


def _requested_period() -> tuple[date | None, date | None]:
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD`` as asked; anything unparseable is ignored."""

    def parse(name: str) -> date | None:
        try:
            return date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None

    return parse("from"), parse("to")


def period_from_request() -> tuple[date | None, date | None]:
    """The period of the query string; a reversed one (start after end) is ignored, see
    :func:`reversed_period_notice`."""
    start, end = _requested_period()
    if start is not None and end is not None and start > end:
        return None, None
    return start, end


def reversed_period_notice() -> None:
    """Say so when the period's start is after its end (the whole period is shown instead of
    the figures of an empty period, which would read as zeros)."""
    start, end = _requested_period()
    if start is not None and end is not None and start > end:
        flash(
            _(
                "The period's start (%(start)s) is after its end (%(end)s): the whole period "
                "is shown. Choose a start before the end.",
                start=format_date(start),
                end=format_date(end),
            ),
            "warning",
        )


def filters_from_request(pilot: Pilot) -> Filters:
    """The cohort filters of the query string; values the pilot does not have are ignored."""
    spec = pilot_spec(pilot)
    arm = request.args.get("arm") or None
    unit = request.args.get("unit") or None
    time_point = request.args.get("tp") or None
    return Filters(
        period=period_from_request(),
        arm=arm if arm in {a.id for a in spec.arms} else None,
        unit=unit if unit in cohort_units(db.session, pilot.id) else None,
        time_point=time_point if time_point in {tp.id for tp in spec.time_points} else None,
    )


def filter_args(filters: Filters) -> dict[str, str]:
    """The query-string form of ``filters`` (for links that keep them)."""
    args = {
        "from": filters.period[0].isoformat() if filters.period[0] else None,
        "to": filters.period[1].isoformat() if filters.period[1] else None,
        "arm": filters.arm,
        "unit": filters.unit,
        "tp": filters.time_point,
    }
    return {k: v for k, v in args.items() if v}


COSTS_PAGES = ("/pilot/<pilot_code>/costs", "/costs/<pilot_code>")
"""Where the costs pages (another part of the application) may live."""


def costs_url(pilot_code: str) -> str | None:
    """The pilot's costs page (costs by product and cost centre), if it is installed."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule.rstrip("/") in COSTS_PAGES:
            return url_for(rule.endpoint, pilot_code=pilot_code)
    return None


@bp.get("/")
@allow(Role.PILOT_LEAD)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("pilot.overview", pilot_code=pilots[0].code))
    return render_template("pilot/index.html", pilots=pilots)


def requested_view() -> dict[str, Any]:
    """The cohort page's view of the query string (section and its options)."""
    return {
        "section": request.args.get("section"),
        "effect": request.args.get("effect"),
        "score": request.args.get("score"),
        "sectors": request.args.get("sectors") == "1",
    }


def served_analysis(pilot: Pilot, filters: Filters) -> snapshots.Served | snapshots.Building | None:
    """The pilot's analysis for ``filters`` and the requested view from its snapshot (see
    :func:`vaikuttavuus.services.snapshots.serve`)."""
    view = requested_view()
    if request.args.get("by") == "provider_sector":  # a CSV of the services by sector
        view["sectors"] = True
    return snapshots.serve(pilot, snapshots.cohort_key(pilot, filters, view=view))


PAGES_KEPT = 64
"""Cohort pages (their content: tables, charts, labels) kept per process, one per view
(pilot, filters, section, language): the charts are drawn once per snapshot and language,
not on every view. A view's page of a newer snapshot replaces the older one, so what is kept
is bounded by the views in use, however often the data change."""
_PAGES: OrderedDict[tuple[object, ...], tuple[tuple[object, ...], Any]] = OrderedDict()
_PAGES_LOCK = threading.Lock()


def _kept_page(served: snapshots.Served, section: str) -> Any:
    """The page of ``served`` for the request's view and language: as the build drew it
    (in its language), else drawn here once per snapshot and kept."""
    drawn = _drawn_page(served)
    if drawn is not None:  # drawn by the build: no chart is drawn in the web worker
        return drawn.page(served.analysis, current_language())
    view = (
        db.engine.url.render_as_string(hide_password=True),
        served.analysis.pilot.id,
        request.query_string,
        current_language(),
        section,
        *(request.args.get(name) for name in ("effect", "score", "mixed", "sectors")),
    )
    drawn_from = (served.snapshot_id, served.label)
    with _PAGES_LOCK:
        held = _PAGES.get(view)
        if held is not None and held[0] == drawn_from:
            _PAGES.move_to_end(view)
            return held[1]
    page = _page(served.analysis, section)
    if request.args.get("mixed") == "1":
        return page  # the mixed model has its own cache (and may still be running)
    with _PAGES_LOCK:
        _PAGES[view] = (drawn_from, page)
        _PAGES.move_to_end(view)
        while len(_PAGES) > PAGES_KEPT:
            _PAGES.popitem(last=False)
    return page


def _drawn_page(served: snapshots.Served) -> DrawnPage | None:
    """The request's view as the build drew it, when it drew it in the request's language
    (the mixed model's part is never stored: it has its own cache)."""
    if request.args.get("mixed") == "1":
        return None
    return served.drawn.get(current_language())


def _page(analysis: CohortAnalysis, section: str) -> Any:
    return cohort_page(
        analysis,
        current_language(),
        section=section,
        effect=request.args.get("effect"),
        score=request.args.get("score"),
        mixed=request.args.get("mixed") == "1",
        sectors=request.args.get("sectors") == "1",
    )


@bp.get("/<pilot_code>/")
@allow(Role.PILOT_LEAD)
def overview(pilot_code: str) -> str:
    pilot = require_pilot(pilot_code)
    section = request.args.get("section", SECTIONS[0])
    reversed_period_notice()
    with read_snapshot():
        filters = filters_from_request(pilot)
    served = served_analysis(pilot, filters)
    if not isinstance(served, snapshots.Served):
        return render_template(
            "pilot/computing.html", pilot=pilot, building=served, args=filter_args(filters)
        )
    with read_snapshot():
        units = cohort_units(db.session, pilot.id)
        try:
            page = _kept_page(served, section)
            data_version: Any = served
        except snapshots.SnapshotMissError as error:
            # the snapshot lacks what this view needs: compute it here, from one moment
            logger.warning("cohort page computed in the request: %s", error)
            snapshot = current_snapshot()
            assert snapshot is not None
            page = _page(CohortAnalysis(db.session, pilot, filters), section)
            data_version = snapshot.data_version(pilot.id)
        return render_template(
            "pilot/overview.html",
            pilot=pilot,
            page=page,
            filters=filters,
            args=filter_args(filters),
            units=units,
            costs_url=costs_url(pilot.code),
            data_version=data_version,
        )


@bp.get("/<pilot_code>/tables/<name>.csv")
@allow(Role.PILOT_LEAD)
def table_csv(pilot_code: str, name: str) -> Response:
    """The numbers of one table or figure of the cohort page, with the page's filters (from
    the snapshot the page showed; computed here only when there is none yet)."""
    pilot = require_pilot(pilot_code)
    wanted = TableRequest(
        effect=request.args.get("effect"),
        score=request.args.get("score"),
        by=request.args.get("by"),
    )
    with read_snapshot():
        filters = filters_from_request(pilot)
    served = served_analysis(pilot, filters)
    table = None
    label = None
    if isinstance(served, snapshots.Served):
        try:
            table = cohort_table(served.analysis, name, wanted)
            label = served.label
        except snapshots.SnapshotMissError as error:
            if "section" not in request.args:  # a bookmarked or scripted link: any section's
                table, label = _table_from_any_section(pilot, filters, name, wanted)
            if label is None:
                logger.warning("cohort table computed in the request: %s", error)
    if label is None:
        with read_snapshot() as snapshot:
            analysis = CohortAnalysis(db.session, pilot, filters)
            table = cohort_table(analysis, name, wanted)
            label = snapshot.data_version(pilot.id).label
    if table is None:
        abort(404)
    audit.record(
        "export_csv",
        object_type="cohort_table",
        object_id=name,
        pilot_code=pilot.code,
        details={"filters": filters.to_dict(), "rows": len(table)},
    )
    response = with_data_version(make_response(to_csv(table)), label)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    filename = f"{pilot.code}-{name}-{county_today().isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _table_from_any_section(
    pilot: Pilot, filters: Filters, name: str, wanted: TableRequest
) -> tuple[Any, str | None]:
    """A table asked for without its section (a CSV link kept or fetched by a script): from
    the stored snapshot of the first section of the page that holds it, with the same
    filters (the section that held it last time is tried first); (None, None) when none
    does."""
    learned = _TABLE_SECTIONS.get(name)
    sections = [learned] if learned else []
    sections += [section for section in SECTIONS if section != learned]
    keys = {
        section: snapshots.cohort_key(pilot, filters, view={**requested_view(), "section": section})
        for section in sections
    }
    stored = snapshots.stored_keys(pilot, list(keys.values()))
    for section, key in keys.items():
        if key not in stored:
            continue
        served = snapshots.existing(pilot, key)
        if served is None:
            continue
        try:
            table = cohort_table(served.analysis, name, wanted)
        except snapshots.SnapshotMissError:
            continue
        _TABLE_SECTIONS[name] = section
        return table, served.label
    return None, None


_TABLE_SECTIONS: dict[str, str] = {}
"""The section whose snapshot last held each table (a few names; tried first next time)."""


@bp.get("/<pilot_code>/summary.pdf")
@allow(Role.PILOT_LEAD)
def summary_pdf(pilot_code: str) -> Response:
    pilot = require_pilot(pilot_code)
    return cohort_summary_pdf_response(pilot_code=pilot.code, audience="pilot")


@bp.get("/<pilot_code>/management.pdf")
@allow(Role.PILOT_LEAD)
def management_pdf(pilot_code: str) -> Response | tuple[str, int]:
    """The management summary, as management gets it, for the pilot lead's own checks."""
    from vaikuttavuus.views.management import management_pdf_response

    pilot = require_pilot(pilot_code)
    return management_pdf_response(pilot, audience="pilot")


def pdf_language() -> str:
    language = request.args.get("lang_pdf") or current_language()
    return language if language in LANGUAGES else "fi"


def cohort_summary_pdf_response(*, pilot_code: str, audience: str) -> Response:
    """The short cohort summary (enrolment, response rates, primary outcome) as a PDF
    download: the cohort page's analytics and numbers, for the page's filters."""
    pilot = require_pilot(pilot_code)
    language = pdf_language()
    with read_snapshot():
        filters = filters_from_request(pilot)
    pdf, label = _summary_from_snapshot(pilot, filters, language)
    if pdf is None or label is None:  # no snapshot yet (no worker has got to it)
        with read_snapshot() as snapshot:
            pdf = render_cohort_summary_pdf(db.session, pilot, filters, language)
            label = snapshot.data_version(pilot.id).label
    audit.record(
        "export_pdf",
        object_type="cohort_summary",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={"language": language, "audience": audience, "filters": filters.to_dict()},
    )
    response = with_data_version(make_response(pdf), label)
    response.headers["Content-Type"] = "application/pdf"
    filename = f"{pilot.code}-cohort-summary-{county_today().isoformat()}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _summary_from_snapshot(
    pilot: Pilot, filters: Filters, language: str
) -> tuple[bytes | None, str | None]:
    """The cohort summary PDF from the snapshot of its view (a refresh is asked for when it is
    missing or old); ``(None, None)`` when there is none yet or it lacks what the PDF needs."""
    key = snapshots.cohort_key(pilot, filters, view={"section": snapshots.SUMMARY_VIEW})
    served = snapshots.serve(pilot, key)
    if not isinstance(served, snapshots.Served):
        return None, None
    with read_snapshot():
        demo_data = demo_data_present(db.session)
    try:
        return cohort_summary_pdf_of(served.analysis, language, demo_data=demo_data), served.label
    except snapshots.SnapshotMissError as error:
        logger.warning("cohort summary PDF computed in the request: %s", error)
        return None, None
