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
from pathlib import Path
from typing import Any

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

from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import AnySession, SnapshotSession, read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Pilot, Role
from vaikuttavuus.security.access import allow
from vaikuttavuus.services import audit, exports
from vaikuttavuus.services.exports import ExportOptions, ExportOptionsError, Shape
from vaikuttavuus.views.common import require_pilot, visible_pilots, with_data_version

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
    return f"{pilot.code}-{name}-{county_today().isoformat()}.{suffix}"


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


def _snapshot(pilot: Pilot) -> tuple[SnapshotSession, Pilot]:
    """The download's own read snapshot (one moment of the data for the whole file, its row
    count included) and the pilot as that snapshot's session sees it."""
    stream = SnapshotSession()
    try:
        mine = stream.session.get(Pilot, pilot.id)
        assert mine is not None
        stream.snapshot.data_version(pilot.id)  # read now (kept): the response header says it
    except BaseException:
        stream.close()
        raise
    return stream, mine


def _streamed(stream: SnapshotSession, produce: Callable[[], Iterator[str]]) -> Iterator[str]:
    """Run ``produce`` while the response is sent, reading in ``stream``'s snapshot. The
    request's context is gone by then, so each step runs in an application context of its own
    (for the settings the services read), popped again before the step's text is handed to
    the server: no context stays pushed while the response waits. The snapshot's session and
    connection belong to the download and are closed when it ends or is abandoned (the view
    also closes them when the response is closed unread)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def generate() -> Iterator[str]:
        try:
            produced: Iterator[str] | None = None
            while True:
                with app.app_context():
                    if produced is None:
                        produced = produce()
                    text = next(produced, None)
                if text is None:
                    return
                yield text
        finally:
            stream.close()

    return generate()


def _streamed_response(
    stream: SnapshotSession, pilot: Pilot, produce: Callable[[], Iterator[str]], **options: Any
) -> Response:
    response = Response(_streamed(stream, produce), **options)
    response.call_on_close(stream.close)
    return with_data_version(response, stream.snapshot.data_version(pilot.id).label)


def _rows(
    session: AnySession, pilot: Pilot, shape: Shape, options: ExportOptions
) -> tuple[list[str], Iterator[list[object]]]:
    if shape == "long":
        return exports.long_header(), exports.long_rows(session, pilot, options)
    layout = exports.wide_layout(session, pilot)
    return layout.header, exports.wide_rows(session, pilot, layout, options)


@bp.get("/<pilot_code>/long.csv", defaults={"shape": "long"})
@bp.get("/<pilot_code>/wide.csv", defaults={"shape": "wide"})
@allow(Role.PILOT_LEAD)
def table_csv(pilot_code: str, shape: Shape) -> Response | tuple[str, int]:
    pilot = require_pilot(pilot_code)
    options = _options(pilot)
    if not isinstance(options, ExportOptions):
        return options
    stream, mine = _snapshot(pilot)
    try:
        rows = exports.count_rows(stream.session, mine, shape, options)
        layout = exports.wide_layout(stream.session, mine) if shape == "wide" else None
    except BaseException:
        stream.close()
        raise
    _record(
        pilot,
        "export_data",
        {"shape": shape, "format": "csv", "rows": rows, **options.as_details()},
    )
    header = exports.long_header() if layout is None else layout.header

    def produce() -> Iterator[str]:
        data = (
            exports.long_rows(stream.session, mine, options)
            if layout is None
            else exports.wide_rows(stream.session, mine, layout, options)
        )
        return exports.csv_stream(header, data)

    return _streamed_response(
        stream,
        pilot,
        produce,
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
    with read_snapshot():
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
    handle, name = tempfile.mkstemp(prefix="vaikuttavuus-export-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        with read_snapshot() as snapshot:  # the whole file from one moment of the data
            header, data = _rows(db.session, pilot, shape, options)
            entries = exports.dictionary(db.session, pilot, shape, options, current_language())
            counts = exports.write_xlsx(
                path,
                [
                    ("data", header, data),
                    ("dictionary", exports.DICTIONARY_COLUMNS, [e.cells() for e in entries]),
                ],
            )
            version = snapshot.data_version(pilot.id)
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
    return with_data_version(response, version.label)


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
    stream, mine = _snapshot(pilot)
    try:
        rows = exports.count_rows(stream.session, mine, "fhir", options)
    except BaseException:
        stream.close()
        raise
    _record(pilot, "export_fhir", {"format": "fhir", "rows": rows, **options.as_details()})
    return _streamed_response(
        stream,
        pilot,
        lambda: exports.fhir_bundle(stream.session, mine, options),
        mimetype=FHIR_MIMETYPE,
        headers=_attachment(_filename(pilot, "responses", "fhir.json")),
    )
