"""``vaikuttavuus report patient``: one patient's one-page summary as a PDF.

The command object is :data:`patient_command`; the ``report`` group (``vaikuttavuus.cli.reports``)
attaches it. The PDF is the one the clinician downloads from the patient's page, in the
patient's language unless ``--lang`` says otherwise, written with mode 0600 and audited as an
export of personal data. Exit codes: 0 written, 2 unknown pilot or patient.
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext

from vaikuttavuus.county_time import county_today


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(2)


def _write(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-", suffix=".pdf")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@click.command("patient")
@click.option("--pilot", "pilot_code", required=True, metavar="CODE", help="The pilot.")
@click.option("--pseudonym", required=True, metavar="P", help="The patient's pseudonym.")
@click.option(
    "--lang",
    type=click.Choice(["fi", "sv", "en"]),
    default=None,
    help="Language of the summary (default: the patient's own).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The PDF file to write.",
)
@with_appcontext
def patient_command(pilot_code: str, pseudonym: str, lang: str | None, out: Path) -> None:
    """Write one patient's one-page summary (scores over time, alerts, measures) as a PDF."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Enrolment, Person
    from vaikuttavuus.queries import pilot_by_code
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.patient_summary import summary_language, summary_pdf

    pilot = pilot_by_code(db.session, pilot_code)
    if pilot is None:
        _fail(f"No pilot '{pilot_code}'.")
        return
    enrolment = db.session.scalar(
        select(Enrolment)
        .join(Person, Enrolment.person_id == Person.id)
        .where(
            Enrolment.pilot_id == pilot.id,
            Person.pseudonym == pseudonym,
            Person.erased_at.is_(None),
        )
    )
    if enrolment is None:
        _fail(f"No patient '{pseudonym}' in pilot '{pilot_code}'.")
        return
    language = summary_language(enrolment, lang)
    _write(out, summary_pdf(db.session, enrolment, language, county_today()))
    audit.record(
        "export_patient_summary",
        object_type="enrolment",
        object_id=enrolment.id,
        person_id=enrolment.person_id,
        pilot_code=pilot.code,
        actor=f"cli:{getpass.getuser()}",
        details={"format": "pdf", "language": language, "file": out.name},
    )
    db.session.commit()
    click.echo(f"Wrote the summary of {pseudonym} ({language}) to {out}.")
