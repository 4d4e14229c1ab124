"""Pilot-lead cost pages: the cohort's costs per arm, cost centre and product — the pilot
page's figures, with its period, arm and unit filters — with a chart and each person's episode
cost, and each patient's episode cost by product and cost centre."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from vaikuttavuus.database import read_snapshot
from vaikuttavuus.domain.catalogue import DIRECT_COST_PRODUCT, UNALLOCATED_CENTRE
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Enrolment, Person, Role
from vaikuttavuus.plotting import Chart, stacked_bar_chart
from vaikuttavuus.queries import cohort_units
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.cohort_view import fmt_euro
from vaikuttavuus.services.cost_reports import OTHER, CohortCosts, cohort_costs, patient_costs
from vaikuttavuus.views.common import require_pilot, visible_pilots
from vaikuttavuus.views.paging import page_number
from vaikuttavuus.views.pilot import filter_args, filters_from_request

bp = Blueprint("costs", __name__, url_prefix="/costs")

PAGE_SIZE = 50
SORTS = {"pseudonym": ["pseudonym"], "total": ["total_eur", "pseudonym"]}


def _special_labels() -> dict[str, str]:
    return {
        DIRECT_COST_PRODUCT: _("Direct costs without a product"),
        UNALLOCATED_CENTRE: _("No cost centre"),
        OTHER: _("Other cost centres"),
    }


@bp.get("/")
@allow(Role.PILOT_LEAD)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("costs.cohort", pilot_code=pilots[0].code))
    return render_template("costs/index.html", pilots=pilots)


def _chart(report: CohortCosts) -> Chart | None:
    if not report.chart_arms:
        return None
    special = _special_labels()
    segments = {special.get(name, name): values for name, values in report.chart_segments.items()}
    description = "; ".join(
        f"{arm}: "
        + ", ".join(f"{name} {fmt_euro(values[index])}" for name, values in segments.items())
        for index, arm in enumerate(report.chart_arms)
    )
    return stacked_bar_chart(
        categories=report.chart_arms,
        segments=segments,
        y_label=_("Mean cost per person (€, %(year)s prices)", year=report.target_year),
        alt=_(
            "Mean episode cost per person by cost centre in each arm. %(values)s",
            values=description,
        ),
    )


@bp.get("/<pilot_code>/")
@allow(Role.PILOT_LEAD)
def cohort(pilot_code: str) -> str:
    """The pilot page's cost figures (same persons, filters and numbers), their chart and the
    episode cost of each person in them."""
    pilot = require_pilot(pilot_code)
    sort = request.args.get("sort", "pseudonym")
    if sort not in SORTS:
        sort = "pseudonym"
    page = page_number()
    with read_snapshot() as snapshot:
        filters = filters_from_request(pilot)
        analysis = CohortAnalysis(
            db.session, pilot, Filters(filters.period, filters.arm, filters.unit)
        )
        report = cohort_costs(db.session, analysis, current_language())
        people = report.people.sort_values(
            SORTS[sort], ascending=[sort != "total"] + [True] * (len(SORTS[sort]) - 1)
        )
        pages = max((len(people) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        shown = people.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        html = render_template(
            "costs/cohort.html",
            pilot=pilot,
            report=report,
            chart=_chart(report),
            filters=analysis.filters,
            args=filter_args(analysis.filters),
            units=cohort_units(db.session, pilot.id),
            data_version=snapshot.data_version(pilot.id),
            people=shown.to_dict(orient="records"),
            page=page,
            pages=pages,
            sort=sort,
        )
    audit.record(
        "view_cost_report",
        object_type="pilot",
        object_id=pilot.code,
        pilot_code=pilot.code,
        details={"page": page, "rows": len(shown), "filters": analysis.filters.to_dict()},
    )
    return html


@bp.get("/<pilot_code>/<pseudonym>")
@allow(Role.PILOT_LEAD)
def patient(pilot_code: str, pseudonym: str) -> str:
    pilot = require_pilot(pilot_code)
    enrolment = db.session.scalar(
        select(Enrolment)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Enrolment.pilot_id == pilot.id, Person.pseudonym == pseudonym)
    )
    if enrolment is None or enrolment.person.erased_at is not None:
        abort(404)
    with read_snapshot():
        costs = patient_costs(db.session, pilot, enrolment, current_language())
    audit.record(
        "view_patient_costs",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
    )
    return render_template(
        "costs/patient.html",
        pilot=pilot,
        enrolment=enrolment,
        person=enrolment.person,
        costs=costs,
        special=_special_labels(),
        rows=costs.rows.to_dict(orient="records"),
    )
