"""Pilot-lead imports: upload a CSV or XLSX file, see the row-level report, the import log and
the templates of every kind."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
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
from vaikuttavuus.extensions import db
from vaikuttavuus.models import ImportBatch, Pilot, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit
from vaikuttavuus.services.imports import (
    ImportRefusedError,
    describe,
    import_context,
    outcome_of,
    report_csv,
    run_import,
    template_csv,
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
            FileAllowed(["csv", "txt", "xlsx"], _l("Upload a CSV (UTF-8) or an XLSX file.")),
        ],
    )
    dry_run = BooleanField(_l("Only check the file; store nothing"))
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
    if form.validate_on_submit():
        upload_file = form.file.data
        try:
            outcome = run_import(
                db.session,
                kind=form.kind.data or "",
                data=upload_file.read(),
                filename=upload_file.filename or "upload",
                pilot_code=pilot.code,
                user=current_user._get_current_object(),
                dry_run=bool(form.dry_run.data),
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
        return redirect(url_for("imports.batch", pilot_code=pilot.code, batch_id=outcome.batch_id))
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
    pilot and an example."""
    context = import_context(db.session, pilot, "people")
    docs = []
    for kind in KINDS:
        schema = SCHEMAS[kind]
        applies = all(context.allowed(name) for name in schema.requires)
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
                    "example": column.example,
                }
            )
        docs.append(
            {
                "kind": kind,
                "title": _(schema.title),
                "description": _(schema.description),
                "applies": applies,
                "columns": columns,
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
    response = make_response(report_csv(outcome_of(found).errors).encode("utf-8"))
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    filename = f"{pilot.code}-import-{found.id}-errors.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<pilot_code>/templates/<kind>.<fmt>")
@allow(Role.PILOT_LEAD)
def template(pilot_code: str, kind: str, fmt: str) -> Response:
    pilot = require_pilot(pilot_code)
    if kind not in KINDS or fmt not in ("csv", "xlsx"):
        abort(404)
    if fmt == "csv":
        response = make_response(("\ufeff" + template_csv(kind)).encode("utf-8"))
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
    else:
        response = make_response(template_xlsx(kind))
        response.headers["Content-Type"] = (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    filename = f"{pilot.code}-{kind}-template.{fmt}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
