"""Pilot leads' data exports: long and wide CSV/XLSX with a data dictionary, and a FHIR Bundle.

Only pilot leads, only for their own pilots (management sees aggregates only). Every download
is audited once, with its parameters and the number of rows. CSV and FHIR are streamed as they
are produced; XLSX is written to a temporary file first (openpyxl's write-only workbook) and
then streamed from disk and removed, so memory stays flat however large the pilot.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Pilot, Role
from vaikuttavuus.queries import pilot_by_code
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit, exports
from vaikuttavuus.services.exports import ExportOptions, ExportOptionsError, Shape
from vaikuttavuus.views.common import require_pilot, visible_pilots

bp = Blueprint("exports", __name__, url_prefix="/exports")

CSV_MIMETYPE = "text/csv"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FHIR_MIMETYPE = "application/fhir+json"


def _field_errors(error: ExportOptionsError) -> dict[str, str]:
    messages = {
        "date_shift": _(
            "Give the date shift as whole days from 0 to %(max)s.",
            max=exports.MAX_DATE_SHIFT_DAYS,
        ),
        "from": _("Give the start of the period as a date (YYYY-MM-DD)."),
        "to": _("Give the end of the period as a date (YYYY-MM-DD) on or after its start."),
    }
    return {name: messages[name] for name in error.fields if name in messages}


def _options(pilot: Pilot) -> ExportOptions | tuple[str, int]:
    """The request's options, or the form page with the problems (status 400)."""
    try:
        return exports.parse_options(request.args)
    except ExportOptionsError as error:
        return _page(pilot, _field_errors(error)), 400


def _page(pilot: Pilot, errors: dict[str, str] | None = None) -> str:
    return render_template(
        "exports/index.html",
        pilot=pilot,
        errors=errors or {},
        values=request.args,
        max_shift=exports.MAX_DATE_SHIFT_DAYS,
    )


def _filename(pilot: Pilot, name: str, suffix: str) -> str:
    return f"{pilot.code}-{name}-{date.today().isoformat()}.{suffix}"


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _record(pilot: Pilot, action: str, details: dict[str, object]) -> None:
    audit.record(
        action, object_type="pilot", object_id=pilot.code, pilot_code=pilot.code, details=details
    )


@bp.get("/")
@allow(Role.PILOT_LEAD)
def index() -> Response | str:
    pilots = visible_pilots()
    if len(pilots) == 1:
        return redirect(url_for("exports.pilot", pilot_code=pilots[0].code))
    return render_template("exports/choose.html", pilots=pilots)


@bp.get("/<pilot_code>/")
@allow(Role.PILOT_LEAD)
def pilot(pilot_code: str) -> str:
    return _page(require_pilot(pilot_code))


def _streamed(pilot_code: str, produce: Callable[[Pilot], Iterator[str]]) -> Iterator[str]:
    """Run ``produce`` while the response is sent. The request's context is gone by then, so
    each step runs in an application context (and database session) of its own that is closed
    again before the step's text is handed to the server: no context stays pushed while the
    response waits, and a response that is never read leaves nothing open."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def generate() -> Iterator[str]:
        produced: Iterator[str] | None = None
        while True:
            with app.app_context():
                if produced is None:
                    pilot = pilot_by_code(db.session, pilot_code)
                    assert pilot is not None
                    produced = produce(pilot)
                text = next(produced, None)
            if text is None:
                return
            yield text

    return generate()


def _rows(
    pilot: Pilot, shape: Shape, options: ExportOptions
) -> tuple[list[str], Iterator[list[object]]]:
    if shape == "long":
        return exports.long_header(), exports.long_rows(db.session, pilot, options)
    layout = exports.wide_layout(db.session, pilot)
    return layout.header, exports.wide_rows(db.session, pilot, layout, options)


@bp.get("/<pilot_code>/long.csv", defaults={"shape": "long"})
@bp.get("/<pilot_code>/wide.csv", defaults={"shape": "wide"})
@allow(Role.PILOT_LEAD)
def table_csv(pilot_code: str, shape: Shape) -> Response | tuple[str, int]:
    pilot = require_pilot(pilot_code)
    options = _options(pilot)
    if not isinstance(options, ExportOptions):
        return options
    rows = exports.count_rows(db.session, pilot, shape, options)
    _record(
        pilot,
        "export_data",
        {"shape": shape, "format": "csv", "rows": rows, **options.as_details()},
    )
    layout = exports.wide_layout(db.session, pilot) if shape == "wide" else None
    header = exports.long_header() if layout is None else layout.header

    def produce(pilot: Pilot) -> Iterator[str]:
        data = (
            exports.long_rows(db.session, pilot, options)
            if layout is None
            else exports.wide_rows(db.session, pilot, layout, options)
        )
        return exports.csv_stream(header, data)

    return Response(
        _streamed(pilot.code, produce),
        mimetype=CSV_MIMETYPE,
        headers=_attachment(_filename(pilot, shape, "csv")),
    )


@bp.get("/<pilot_code>/long-dictionary.csv", defaults={"shape": "long"})
@bp.get("/<pilot_code>/wide-dictionary.csv", defaults={"shape": "wide"})
@allow(Role.PILOT_LEAD)
def dictionary_csv(pilot_code: str, shape: Shape) -> Response | tuple[str, int]:
    pilot = require_pilot(pilot_code)
    options = _options(pilot)
    if not isinstance(options, ExportOptions):
        return options
    entries = exports.dictionary(db.session, pilot, shape, options, current_language())
    _record(
        pilot,
        "export_dictionary",
        {"shape": shape, "format": "csv", "rows": len(entries), **options.as_details()},
    )
    return Response(
        exports.csv_stream(exports.DICTIONARY_COLUMNS, [entry.cells() for entry in entries]),
        mimetype=CSV_MIMETYPE,
        headers=_attachment(_filename(pilot, f"{shape}-dictionary", "csv")),
    )


@bp.get("/<pilot_code>/long.xlsx", defaults={"shape": "long"})
@bp.get("/<pilot_code>/wide.xlsx", defaults={"shape": "wide"})
@allow(Role.PILOT_LEAD)
def table_xlsx(pilot_code: str, shape: Shape) -> Response | tuple[str, int]:
    pilot = require_pilot(pilot_code)
    options = _options(pilot)
    if not isinstance(options, ExportOptions):
        return options
    header, data = _rows(pilot, shape, options)
    entries = exports.dictionary(db.session, pilot, shape, options, current_language())
    handle, name = tempfile.mkstemp(prefix="vaikuttavuus-export-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        counts = exports.write_xlsx(
            path,
            [
                ("data", header, data),
                ("dictionary", exports.DICTIONARY_COLUMNS, [e.cells() for e in entries]),
            ],
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _record(
        pilot,
        "export_data",
        {"shape": shape, "format": "xlsx", "rows": counts["data"], **options.as_details()},
    )
    response = Response(
        _file_chunks(path),
        mimetype=XLSX_MIMETYPE,
        headers={
            **_attachment(_filename(pilot, shape, "xlsx")),
            "Content-Length": str(path.stat().st_size),
            "Cache-Control": "no-store",
        },
        direct_passthrough=True,
    )
    response.call_on_close(lambda: path.unlink(missing_ok=True))
    return response


def _file_chunks(path: Path, size: int = 256 * 1024) -> Iterator[bytes]:
    """The file's bytes a block at a time; the file is removed once read (or when the
    response is closed without being read)."""
    try:
        with path.open("rb") as stream:
            while block := stream.read(size):
                yield block
    finally:
        path.unlink(missing_ok=True)


@bp.get("/<pilot_code>/responses.fhir.json")
@allow(Role.PILOT_LEAD)
def fhir_bundle(pilot_code: str) -> Response | tuple[str, int]:
    pilot = require_pilot(pilot_code)
    options = _options(pilot)
    if not isinstance(options, ExportOptions):
        return options
    rows = exports.count_rows(db.session, pilot, "fhir", options)
    _record(pilot, "export_fhir", {"format": "fhir", "rows": rows, **options.as_details()})
    return Response(
        _streamed(pilot.code, lambda pilot: exports.fhir_bundle(db.session, pilot, options)),
        mimetype=FHIR_MIMETYPE,
        headers=_attachment(_filename(pilot, "responses", "fhir.json")),
    )
