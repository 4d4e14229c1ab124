"""``vaikuttavuus export``: a pilot's pseudonymised data as CSV, XLSX or a FHIR Bundle.

The same exports as the pilot leads' web page (:mod:`vaikuttavuus.services.exports`), written
to a file (mode 0600) and audited with the parameters and the number of rows. A CSV export
writes its data dictionary next to it (``NAME.dictionary.csv``); an XLSX file holds it as a
second sheet. Exit codes: 0 written, 2 a usage problem (unknown pilot, bad option).
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click
from flask.cli import with_appcontext


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(2)


def _write_atomically(out: Path, write: Callable[[Path], int | None]) -> int | None:
    """Write through a temporary file in the same folder, readable by the owner only."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-")
    os.close(handle)
    temporary = Path(name)
    try:
        temporary.chmod(0o600)
        result = write(temporary)
        temporary.replace(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return result


def dictionary_path(out: Path) -> Path:
    """Where a CSV export's data dictionary goes: ``NAME.dictionary.csv`` beside it."""
    return out.with_name(f"{out.stem}.dictionary.csv")


@click.command("export")
@click.option("--pilot", "pilot_code", required=True, metavar="CODE", help="The pilot.")
@click.option(
    "--shape",
    type=click.Choice(["long", "wide"]),
    default="long",
    show_default=True,
    help="long: person × time point × item; wide: one row per person (ignored for fhir).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "xlsx", "fhir"]),
    default="csv",
    show_default=True,
    help="CSV (plus a dictionary file), XLSX (dictionary sheet) or a FHIR Bundle (JSON).",
)
@click.option(
    "--date-shift",
    "date_shift",
    type=click.IntRange(0, 365),
    default=0,
    show_default=True,
    metavar="DAYS",
    help="Shift each person's dates by one offset within ± DAYS (0: no shifting).",
)
@click.option(
    "--from",
    "start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only enrolments with an index date on or after this date.",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only enrolments with an index date on or before this date.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "fi", "sv"]),
    default="en",
    show_default=True,
    help="Language of the data dictionary.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The file to write.",
)
@with_appcontext
def export_command(
    pilot_code: str,
    shape: str,
    output_format: str,
    date_shift: int,
    start: datetime | None,
    end: datetime | None,
    lang: str,
    out: Path,
) -> None:
    """Export a pilot's pseudonymised data (long or wide CSV/XLSX, or a FHIR Bundle)."""
    from vaikuttavuus.database import read_snapshot
    from vaikuttavuus.extensions import db
    from vaikuttavuus.queries import pilot_by_code
    from vaikuttavuus.services import audit, exports

    pilot = pilot_by_code(db.session, pilot_code)
    if pilot is None:
        _fail(f"No pilot '{pilot_code}'.")
        return
    try:
        options = exports.ExportOptions(
            date_shift_days=date_shift,
            start=start.date() if start else None,
            end=end.date() if end else None,
        )
    except exports.ExportOptionsError:
        _fail("--from must not be after --to.")
        return
    details: dict[str, object] = {"format": output_format, **options.as_details()}
    with read_snapshot():  # every row from one moment of the data
        if output_format == "fhir":
            count = exports.count_rows(db.session, pilot, "fhir", options)
            _write_atomically(
                out,
                lambda path: exports.write_text(
                    path, exports.fhir_bundle(db.session, pilot, options)
                ),
            )
            action = "export_fhir"
        else:
            details["shape"] = shape
            action = "export_data"
            typed_shape: exports.Shape = "long" if shape == "long" else "wide"
            entries = exports.dictionary(db.session, pilot, typed_shape, options, lang)
            if shape == "long":
                header, rows = exports.long_header(), exports.long_rows(db.session, pilot, options)
            else:
                layout = exports.wide_layout(db.session, pilot)
                header, rows = layout.header, exports.wide_rows(db.session, pilot, layout, options)
            cells = [entry.cells() for entry in entries]
            if output_format == "xlsx":
                counts = _write_atomically(
                    out,
                    lambda path: exports.write_xlsx(
                        path,
                        [("data", header, rows), ("dictionary", exports.DICTIONARY_COLUMNS, cells)],
                    )["data"],
                )
                count = int(counts or 0)
            else:
                count = int(
                    _write_atomically(out, lambda path: exports.write_csv(path, header, rows)) or 0
                )
                dictionary = dictionary_path(out)
                _write_atomically(
                    dictionary,
                    lambda path: exports.write_csv(path, exports.DICTIONARY_COLUMNS, cells),
                )
                details["dictionary"] = dictionary.name
    details["rows"] = count
    audit.record(
        action,
        object_type="pilot",
        object_id=pilot.code,
        pilot_code=pilot.code,
        actor=f"cli:{getpass.getuser()}",
        details=details,
    )
    db.session.commit()
    what = "responses" if output_format == "fhir" else "rows"
    click.echo(f"Wrote {count} {what} to {out}.")
    if output_format == "csv":
        click.echo(f"Data dictionary: {dictionary_path(out)}.")


COMMANDS: list[click.Command] = [export_command]
