"""Pilot-lead imports: upload a CSV or XLSX file (questionnaire answers also as a FHIR Bundle),
see the row-level report, the import log and the templates of every kind.

The upload form works without JavaScript; with it (``static/js/imports.js``) the file is sent
in the background with a progress bar, and the server answers ``{"redirect": …}`` to a request
that accepts JSON."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectField, SubmitField

from vaikuttavuus.domain.imports import KINDS, SCHEMAS
from vaikuttavuus.domain.specs import InstrumentSpec, PilotSpec
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import ImportBatch, Pilot, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.definitions import load_measure_catalogue, pilot_spec
from vaikuttavuus.services.imports import (
    ImportRefusedError,
    current_instrument_specs,
    describe,
    import_context,
    outcome_of,
    report_csv,
    run_import,
    template_csv,
    template_table,
    template_xlsx,
)
from vaikuttavuus.views.common import require_pilot, visible_pilots
from vaikuttavuus.views.paging import page_number

bp = Blueprint("imports", __name__, url_prefix="/imports")

PAGE_SIZE = 50
SHOWN_ERRORS = 500
"""Errors listed on the page; the CSV report has every stored one."""

STATUS_LABELS = {
    "stored": _l("stored"),
    "checked": _l("checked, not stored"),
    "rejected": _l("rejected"),
    "failed": _l("failed"),
    "running": _l("interrupted"),
}
TYPE_LABELS = {
    "identity_code": _l("identity code"),
    "pseudonym": _l("pseudonym"),
    "text": _l("text"),
    "code": _l("code"),
    "boolean": _l("yes / no"),
    "integer": _l("whole number"),
    "decimal": _l("number"),
    "date": _l("date"),
    "email": _l("e-mail address"),
    "phone": _l("phone number"),
    "drg": _l("NordDRG code"),
    "measure_value": _l("value"),
    "unit": _l("unit"),
}


class UploadForm(FlaskForm):
    kind = SelectField(_l("What the file holds"), choices=[])
    file = FileField(
        _l("File (CSV or XLSX)"),
        validators=[
            FileRequired(_l("Choose a file.")),
            FileAllowed(
                ["csv", "txt", "xlsx", "json"],
                _l(
                    "Upload a CSV (UTF-8) or an XLSX file (questionnaire answers also as a "
                    "FHIR Bundle in JSON)."
                ),
            ),
        ],
    )
    dry_run = BooleanField(_l("Only check the file; store nothing"))
    allow_outside_window = BooleanField(
        _l("Questionnaire answers: accept answers dated outside the time point's window")
    )
    submit = SubmitField(_l("Import"))


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind, _(SCHEMAS[kind].title)) for kind in KINDS]


@bp.get("/")
@allow(Role.PILOT_LEAD)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("imports.upload", pilot_code=pilots[0].code))
    return render_template("imports/index.html", pilots=pilots)


@bp.route("/<pilot_code>/", methods=["GET", "POST"])
@allow(Role.PILOT_LEAD)
def upload(pilot_code: str) -> Response | str:
    pilot = require_pilot(pilot_code)
    form = UploadForm()
    form.kind.choices = _kind_choices()
    wants_json = request.accept_mimetypes.best == "application/json"
    if form.validate_on_submit():
        upload_file = form.file.data
        kind = form.kind.data or ""
        try:
            outcome = run_import(
                db.session,
                kind=kind,
                data=upload_file.read(),
                filename=upload_file.filename or "upload",
                pilot_code=pilot.code,
                user=current_user._get_current_object(),
                dry_run=bool(form.dry_run.data),
                allow_outside_window=bool(form.allow_outside_window.data) and kind == "responses",
            )
        except ImportRefusedError:
            abort(400)
        if outcome.status == "stored":
            flash(
                _(
                    "%(stored)s rows stored; %(duplicate)s were stored already.",
                    stored=outcome.rows_stored,
                    duplicate=outcome.rows_duplicate,
                ),
                "info",
            )
        elif outcome.status == "checked":
            flash(_("The file has no errors. Nothing was stored (only checked)."), "info")
        else:
            flash(_("The file was not imported. Nothing was stored."), "error")
        target = url_for("imports.batch", pilot_code=pilot.code, batch_id=outcome.batch_id)
        if wants_json:
            return jsonify({"redirect": target})
        return redirect(target)
    if wants_json and request.method == "POST":
        # the page's script sends the form again the usual way, to show the form's errors
        return make_response(jsonify({"errors": form.errors}), 400)
    recent = db.session.scalars(
        select(ImportBatch)
        .where(ImportBatch.pilot_code == pilot.code)
        .order_by(ImportBatch.started_at.desc(), ImportBatch.id.desc())
        .limit(5)
    ).all()
    return render_template(
        "imports/upload.html",
        pilot=pilot,
        form=form,
        kinds=_kind_docs(pilot),
        recent=recent,
        status_labels=STATUS_LABELS,
        max_megabytes=_max_megabytes(),
    )


def _max_megabytes() -> int | None:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit) // (1024 * 1024) if limit else None


def _kind_docs(pilot: Pilot) -> list[dict[str, object]]:
    """Every kind's columns with their type, whether required, the allowed values in this
    pilot and an example; for questionnaire answers also the items of each instrument."""
    context = import_context(db.session, pilot, "people")
    spec = pilot_spec(pilot)
    instruments = current_instrument_specs(db.session)
    docs = []
    for kind in KINDS:
        schema = SCHEMAS[kind]
        applies = all(context.allowed(name) for name in schema.requires)
        header, example = template_table(
            kind, pilots=[spec], instruments=instruments, measures=context.measures
        )
        examples = dict(zip(header, example, strict=True))
        columns = []
        for column in schema.columns:
            allowed = context.allowed(column.vocabulary) if column.vocabulary else ()
            columns.append(
                {
                    "name": column.name,
                    "type": TYPE_LABELS[column.type],
                    "required": column.required,
                    "description": _(column.description),
                    "allowed": allowed,
                    "example": examples.get(column.name, column.example),
                }
            )
        docs.append(
            {
                "kind": kind,
                "title": _(schema.title),
                "description": _(schema.description),
                "applies": applies,
                "columns": columns,
                "item_docs": _item_docs(spec, instruments) if kind == "responses" else [],
                "example": dict(zip(header, example, strict=True)) if kind == "responses" else {},
            }
        )
    return docs


def _item_docs(spec: PilotSpec, instruments: dict[str, InstrumentSpec]) -> list[dict[str, Any]]:
    """Per instrument of the pilot: its time points and each item with its answer codes."""
    language = current_language()
    docs = []
    for code in spec.instrument_ids:
        instrument = instruments.get(code)
        if instrument is None:
            continue
        items = []
        for item in instrument.items:
            if item.type in {"single_choice", "multiple_choice"}:
                codes = ", ".join(
                    f"{o.code} = {o.text.get(language)}" for o in instrument.options_for(item)
                )
                if item.type == "multiple_choice":
                    codes += " " + _("(several codes joined by ;)")
            elif item.type == "yes_no":
                codes = _("yes or no (also 1/0)")
            elif item.value_range is not None:
                low, high = item.value_range
                codes = f"{low:g}–{high:g}" + (f" {item.unit}" if item.unit else "")
            elif item.type == "date":
                codes = _("a date")
            else:
                codes = _("text")
            items.append(
                {
                    "id": item.id,
                    "text": item.text.get(language),
                    "required": item.required,
                    "codes": codes,
                }
            )
        docs.append(
            {
                "code": code,
                "title": instrument.title.get(language),
                "version": instrument.version,
                "time_points": [tp.id for tp in spec.time_points if code in tp.instruments],
                "questions": items,
            }
        )
    return docs


@bp.get("/<pilot_code>/log")
@allow(Role.PILOT_LEAD)
def log(pilot_code: str) -> str:
    pilot = require_pilot(pilot_code)
    page = page_number()
    statement = select(ImportBatch).where(ImportBatch.pilot_code == pilot.code)
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    batches = db.session.scalars(
        statement.order_by(ImportBatch.started_at.desc(), ImportBatch.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template(
        "imports/log.html",
        pilot=pilot,
        batches=batches,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total,
        status_labels=STATUS_LABELS,
        kind_labels=dict(_kind_choices()),
    )


def _batch(pilot: Pilot, batch_id: int) -> ImportBatch:
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None or batch.pilot_code != pilot.code:
        abort(404)
    return batch


@bp.get("/<pilot_code>/log/<int:batch_id>")
@allow(Role.PILOT_LEAD)
def batch(pilot_code: str, batch_id: int) -> str:
    pilot = require_pilot(pilot_code)
    found = _batch(pilot, batch_id)
    outcome = outcome_of(found)
    audit.record(
        "view_import_report",
        object_type="import_batch",
        object_id=found.id,
        pilot_code=pilot.code,
    )
    shown = outcome.errors[:SHOWN_ERRORS]
    return render_template(
        "imports/batch.html",
        pilot=pilot,
        batch=found,
        outcome=outcome,
        errors=[(error, describe(error)) for error in shown],
        notes=[(note, describe(note)) for note in outcome.notes[:SHOWN_ERRORS]],
        status_labels=STATUS_LABELS,
        kind_label=dict(_kind_choices()).get(found.kind, found.kind),
    )


@bp.get("/<pilot_code>/log/<int:batch_id>/errors.csv")
@allow(Role.PILOT_LEAD)
def errors_csv(pilot_code: str, batch_id: int) -> Response:
    pilot = require_pilot(pilot_code)
    found = _batch(pilot, batch_id)
    audit.record(
        "export_import_report",
        object_type="import_batch",
        object_id=found.id,
        pilot_code=pilot.code,
    )
    outcome = outcome_of(found)
    response = make_response(report_csv([*outcome.errors, *outcome.notes]).encode("utf-8"))
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    filename = f"{pilot.code}-import-{found.id}-errors.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<pilot_code>/templates/<kind>.<fmt>")
@allow(Role.PILOT_LEAD)
def template(pilot_code: str, kind: str, fmt: str) -> Response:
    """A kind's header as CSV or XLSX (``?example=1``: with an example row); questionnaire
    answers get one column per item of the pilot's instruments."""
    pilot = require_pilot(pilot_code)
    if kind not in KINDS or fmt not in ("csv", "xlsx"):
        abort(404)
    options: dict[str, Any] = {
        "with_example": request.args.get("example") == "1",
        "pilots": [pilot_spec(pilot)],
        "instruments": current_instrument_specs(db.session),
        "measures": load_measure_catalogue(),
    }
    if fmt == "csv":
        response = make_response(("\ufeff" + template_csv(kind, **options)).encode("utf-8"))
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
    else:
        response = make_response(template_xlsx(kind, **options))
        response.headers["Content-Type"] = (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    filename = f"{pilot.code}-{kind}-template.{fmt}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
