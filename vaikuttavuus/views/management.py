"""Management pages: the two-page summary per pilot and grid period, its PDF, and the board pack
with both pilots (aggregates only: never a row about a person, and small groups hidden).

Management figures exist only for grid periods — quarters, half-years and years — from the
current release (:mod:`vaikuttavuus.domain.periods`): any other period gets a clear message.
The form works without JavaScript: its download buttons submit the chosen pilot, period and
language to the PDF endpoints; with JavaScript the buttons' labels follow the choices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from vaikuttavuus import queries
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import read_snapshot
from vaikuttavuus.domain.periods import (
    GridPeriod,
    PeriodError,
    check_released,
    default_period,
    release_date,
    released_periods,
)
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Pilot, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit, snapshots
from vaikuttavuus.services.management_report import (
    LANGUAGES,
    management_context,
    management_summary,
    render_board_pack,
    render_management_pdf,
)
from vaikuttavuus.services.management_snapshots import management_key
from vaikuttavuus.views.common import require_pilot, visible_pilots, with_data_version

bp = Blueprint("management", __name__, url_prefix="/management")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodChoice:
    """The grid periods of the current release and the one asked for (or why not)."""

    release: date
    periods: list[GridPeriod]
    chosen: GridPeriod | None
    problem: str | None = None


def period_message(error: PeriodError | None, legacy: bool = False) -> str:
    """Why a period cannot be shown, in the user's language."""
    if legacy:
        return _(
            "Management summaries are made for quarters, half-years and years only (so that "
            "no small group can be worked out by comparing periods): choose one of the periods."
        )
    if error is not None and error.code == "not_released":
        return _(
            "%(period)s is not released yet: a quarter's figures are released after the "
            "quarter has ended and its records have been entered. Choose an earlier period.",
            period=error.text,
        )
    return _(
        "“%(period)s” is not a period of the grid. Use a quarter, half-year or year, e.g. "
        "2025Q3, 2025H1 or 2025.",
        period=error.text if error is not None else "",
    )


def choose_period(pilots: list[Pilot], today: date | None = None) -> PeriodChoice:
    """The ``period`` of the query string (a grid period of the current release), else the
    default (the newest released year)."""
    release = release_date(today or county_today())
    first = queries.first_index_date(db.session, [p.id for p in pilots])
    periods = released_periods(first, release)
    fallback = default_period(periods)
    raw = (request.values.get("period") or "").strip()
    legacy = any(request.values.get(name) for name in ("from", "to"))
    if not raw:
        problem = period_message(None, legacy=True) if legacy else None
        return PeriodChoice(release, periods, fallback, problem)
    try:
        chosen = check_released(GridPeriod.parse(raw), release)
    except PeriodError as error:
        return PeriodChoice(release, periods, None, period_message(error))
    return PeriodChoice(release, periods, chosen, None)


def pdf_language() -> str:
    language = request.values.get("lang_pdf") or current_language()
    return language if language in LANGUAGES else "fi"


def chosen_time_point() -> str | None:
    """The follow-up of the key figures asked for (None or unknown: automatic)."""
    return (request.values.get("time_point") or "").strip() or None


def _chosen_pilot(pilots: list[Pilot]) -> Pilot | None:
    chosen = request.values.get("pilot")
    return next((p for p in pilots if p.code == chosen), pilots[0] if pilots else None)


def served_summary(
    pilot: Pilot, period: GridPeriod, release: date, language: str
) -> tuple[dict[str, Any] | None, snapshots.Served | snapshots.Building | None]:
    """The pilot's summary in ``language`` from its snapshot (see
    :func:`vaikuttavuus.services.snapshots.serve`): ``(context, served)``; no context while
    the snapshot is being computed."""
    from flask_babel import force_locale

    served = snapshots.serve(pilot, management_key(pilot, period, release))
    if not isinstance(served, snapshots.Served):
        return None, served
    try:
        with force_locale(language):
            return management_context(served.analysis, language), served
    except snapshots.SnapshotMissError as error:
        logger.warning("management summary computed in the request: %s", error)
        with read_snapshot():
            return management_summary(db.session, pilot, period, release, language), None


@bp.get("/")
@allow(Role.MANAGEMENT)
def index() -> str:
    pilots = visible_pilots()
    pilot = _chosen_pilot(pilots)
    choice = choose_period(pilots)
    language = pdf_language()
    summary = None
    version: Any = None
    computing: Any = None
    time_point = chosen_time_point()  # another follow-up than the default: not precomputed
    if pilot is not None and choice.chosen is not None:
        summary, served = (
            served_summary(pilot, choice.chosen, choice.release, current_language())
            if time_point is None
            else (None, None)
        )
        if isinstance(served, snapshots.Served):
            version = served
        elif summary is None and time_point is None:
            computing = served or True
        else:
            with read_snapshot() as snapshot:  # the whole summary from one moment of the data
                if summary is None:
                    summary = management_summary(
                        db.session,
                        pilot,
                        choice.chosen,
                        choice.release,
                        current_language(),
                        time_point=time_point,
                    )
                version = snapshot.data_version(pilot.id)
    return render_template(
        "management/index.html",
        pilots=pilots,
        pilot=pilot,
        choice=choice,
        period=choice.chosen,
        pdf_language=language,
        summary=summary,
        data_version=version,
        computing=computing,
    )


def _render(
    contexts: list[dict[str, Any]], period: GridPeriod, language: str, **more: Any
) -> bytes:
    from vaikuttavuus.pdf import render_pdf
    from vaikuttavuus.services.demo_data import demo_data_present

    return render_pdf(
        "management.html",
        language,
        pilots=contexts,
        period=period,
        generated_at=datetime.now(UTC),
        demo_data=demo_data_present(db.session),
        **more,
    )


def period_problem_page(message: str) -> tuple[str, int]:
    return render_template(
        "error.html", code=400, title=_("The period cannot be shown"), message=message
    ), 400


def management_pdf_response(pilot: Pilot, *, audience: str) -> Response | tuple[str, int]:
    """One pilot's management summary PDF for the chosen grid period (shared by the
    management and pilot pages)."""
    choice = choose_period([pilot])
    if choice.problem is not None or choice.chosen is None:
        return period_problem_page(choice.problem or period_message(None, legacy=True))
    language = pdf_language()
    time_point = chosen_time_point()  # another follow-up than the default: not precomputed
    context, served = (
        served_summary(pilot, choice.chosen, choice.release, language)
        if time_point is None
        else (None, None)
    )
    if context is not None and isinstance(served, snapshots.Served):
        pdf = _render([context], choice.chosen, language)
        label = served.label
    else:  # not stored yet (no worker has got to it): computed here, from one moment
        with read_snapshot() as snapshot:
            pdf = render_management_pdf(
                db.session,
                pilot,
                choice.chosen,
                choice.release,
                language,
                time_point=time_point,
            )
            label = snapshot.data_version(pilot.id).label
    audit.record(
        "export_pdf",
        object_type="management_summary",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={
            "language": language,
            "audience": audience,
            "period": choice.chosen.code,
            "release": choice.release.isoformat(),
        },
    )
    name = (
        f"{pilot.code}-management-summary-{choice.chosen.code}-{language}-"
        f"{choice.release.isoformat()}.pdf"
    )
    return with_data_version(_pdf(pdf, name), label)


def _pdf(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/summary.pdf")
@allow(Role.MANAGEMENT)
def chosen_pdf() -> Response | tuple[str, int]:
    """The form's download: the pilot, period and language chosen in the form."""
    pilots = visible_pilots()
    pilot = _chosen_pilot(pilots)
    if pilot is None:
        return period_problem_page(_("No pilot to summarise."))
    return management_pdf_response(require_pilot(pilot.code), audience="management")


@bp.get("/<pilot_code>/summary.pdf")
@allow(Role.MANAGEMENT)
def summary_pdf(pilot_code: str) -> Response | tuple[str, int]:
    pilot = require_pilot(pilot_code)
    return management_pdf_response(pilot, audience="management")


@bp.get("/board-pack.pdf")
@allow(Role.MANAGEMENT)
def board_pack() -> Response | tuple[str, int]:
    """Every pilot the user may see, two pages each, in one PDF for the steering group."""
    pilots = visible_pilots()
    choice = choose_period(pilots)
    if choice.problem is not None or choice.chosen is None or not pilots:
        return period_problem_page(choice.problem or period_message(None, legacy=True))
    language = pdf_language()
    contexts = [served_summary(p, choice.chosen, choice.release, language)[0] for p in pilots]
    if all(context is not None for context in contexts):
        pdf = _render(contexts, choice.chosen, language, board_pack=True)  # type: ignore[arg-type]
    else:  # not all stored yet: computed here, every pilot from one moment
        pdf = render_board_pack(db.session, pilots, choice.chosen, choice.release, language)
    audit.record(
        "export_pdf",
        object_type="board_pack",
        object_id=choice.chosen.code,
        details={
            "language": language,
            "period": choice.chosen.code,
            "release": choice.release.isoformat(),
            "pilots": [pilot.code for pilot in pilots],
        },
    )
    return _pdf(pdf, f"board-pack-{choice.chosen.code}-{language}-{choice.release.isoformat()}.pdf")


def download_label(pilot: str, period: str, language: str) -> str:
    """The download button's text: what will be downloaded."""
    return _(
        "Download PDF: %(pilot)s, %(period)s, %(language)s",
        pilot=pilot,
        period=period,
        language=language,
    )


def board_pack_label(period: str, language: str) -> str:
    return _(
        "Download the board pack (both pilots, PDF): %(period)s, %(language)s",
        period=period,
        language=language,
    )


@bp.context_processor
def _labels() -> dict[str, object]:
    return {"download_label": download_label, "board_pack_label": board_pack_label}
