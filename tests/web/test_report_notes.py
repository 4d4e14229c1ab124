"""The PDFs say "Synthetic demonstration data" only when the database holds the demo data set
(people with ``source = 'demo'``, as ``vaikuttavuus demo-data`` stores them), never on a
county's own data."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.isolation import fresh_globals_per_request
from tests.support.staff import staff_login
from vaikuttavuus.extensions import db
from vaikuttavuus.services.demo_data import DEMO_SOURCE
from vaikuttavuus.services.enrolment import NewPerson, add_person

SYNTHETIC = {
    "en": "Synthetic demonstration data",
    "fi": "Synteettist",
    "sv": "Syntetiska demonstrationsdata",
}


def pdf_words(data: bytes, folder: Path) -> str:
    path = folder / "report.pdf"
    path.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return re.sub(r"\s+", " ", text)


def test_the_synthetic_data_note_only_with_demo_data(
    app: Flask, client: FlaskClient, make_user: Any, enrol_patient: Any, tmp_path: Path
) -> None:
    fresh_globals_per_request(app)
    make_user("vastaava", "pilot_lead")
    staff_login(client, "vastaava")
    # a year ago: its quarter is in a release, so the management summary has a period
    enrolment = enrol_patient(index_offset_days=-400)
    pseudonym = enrolment.person.pseudonym
    urls = [
        f"/clinician/bph/{pseudonym}/summary.pdf",
        "/pilot/bph/summary.pdf",
        "/pilot/bph/management.pdf",
    ]

    def texts(language: str) -> dict[str, str]:
        found = {}
        for url in urls:
            response = client.get(url, query_string={"lang_pdf": language})
            assert response.status_code == 200, url
            found[url] = pdf_words(response.data, tmp_path)
        return found

    for language in ("en", "fi"):
        for url, text in texts(language).items():
            assert "Vaikuttavuus" in text, url
            assert SYNTHETIC["en"] not in text and SYNTHETIC[language] not in text, (url, text)

    add_person(db.session, NewPerson(first_name="Demo", last_name="Henkilö"), source=DEMO_SOURCE)
    db.session.commit()
    for language in ("en", "sv"):
        for url, text in texts(language).items():
            assert SYNTHETIC[language] in text, (url, language)
