"""The patient's summary PDF is one A4 page for a full record, in every language.

A *full record*: answers at every time point (with a cohort of the same arm large enough for
its medians to show), a change for the worse (alerts), every clinical measure of the
catalogue with several values, procedures (and a re-operation), and long free-text answers to
the experience questionnaire; a long name. Pages are counted with poppler's ``pdfinfo``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale

from tests.db.test_exports_service import store_response
from tests.support.isolation import fresh_globals_per_request
from tests.support.pdf_structure import assert_accessible
from tests.support.staff import staff_login
from vaikuttavuus.extensions import db
from vaikuttavuus.models import ClinicalMeasurement, Procedure
from vaikuttavuus.services.definitions import load_measure_catalogue
from vaikuttavuus.services.patient_summary import FREE_TEXT_MAX, shorten, summary_context

LANGUAGES = ("fi", "sv", "en")
LONG_TEXT = (
    "Hoitajat olivat ystävällisiä ja lääkäri selitti toimenpiteen hyvin, mutta jonotin "
    "puhelimessa pitkään ja kotiutusohjeet olivat ristiriitaisia: yksi sanoi yhtä ja toinen "
    "toista. Katetrin kanssa kotona oleminen jännitti, eikä ollut selvää, kenelle soittaa "
    "viikonloppuna. "
) * 12  # about 3 000 characters
OTHER_TEXT = "Kiitos koko henkilökunnalle, erityisesti osaston yöhoitajalle. " * 40


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def clinician(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("kliinikko", "clinician", pilots=("bph", "older-adults"))
    staff_login(client, "kliinikko")
    return client


def pdf_pages_and_text(data: bytes, tmp_path: Path) -> tuple[int, str]:
    assert shutil.which("pdfinfo") and shutil.which("pdftotext"), "install poppler-utils"
    path = tmp_path / "summary.pdf"
    path.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))  # type: ignore[union-attr]
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return pages, " ".join(text.split())


def ipss(parts: tuple[int, ...], qol: int) -> dict[str, int]:
    return {f"ipss{k}": v for k, v in enumerate(parts, start=1)} | {"ipss_qol": qol}


def eq5d(level: int, vas: int) -> dict[str, int]:
    return {"mo": level, "sc": level, "ua": level, "pd": level, "ad": level, "vas": vas}


def full_bph_record(enrol_patient: Any, language: str) -> Any:
    """A BPH patient with everything the summary can show, and five patients of the same arm
    answering every time point (so the cohort medians are shown)."""
    enrolment = enrol_patient(
        pilot="bph",
        arm="operating_room",
        index_offset_days=-430,
        first_name="Juha-Pekka Aleksanteri",
        last_name="Väisänen-Lindqvist",
        preferred_language=language,
    )
    for n in range(5):
        other = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=-430)
        store_response(other, "baseline", "ipss", ipss((4, 4, 3, 3, 4, 2, 2 + n % 2), qol=4))
        store_response(other, "m3", "ipss", ipss((1, 1, 1, 0, 1, 1, n % 3), qol=1))
        store_response(other, "m12", "ipss", ipss((1, 1, 1, 1, 1, 1, n % 2), qol=1))
        for tp in ("baseline", "m3", "m12"):
            store_response(other, tp, "eq5d5l", eq5d(1 + n % 3, 70 + n))
    # better at 3 months, clearly worse than before at 12 months: "worse" alerts
    store_response(enrolment, "baseline", "ipss", ipss((2, 2, 2, 2, 2, 2, 1), qol=3))
    store_response(enrolment, "m3", "ipss", ipss((1, 1, 1, 1, 1, 1, 1), qol=2))
    store_response(enrolment, "m12", "ipss", ipss((5, 5, 5, 5, 5, 5, 5), qol=6))
    store_response(enrolment, "baseline", "eq5d5l", eq5d(1, 95))
    store_response(enrolment, "m3", "eq5d5l", eq5d(2, 80))
    store_response(enrolment, "m12", "eq5d5l", eq5d(5, 10))
    store_response(
        enrolment,
        "m3",
        "prem_bph",
        {
            "information": 2,
            "involvement": 2,
            "respect": 3,
            "pain": 2,
            "waiting": 1,
            "overall": 5,
            "improve": LONG_TEXT[:2000],
            "recommend": 2,
            "comments": OTHER_TEXT[:4000],
        },
    )
    index = enrolment.index_date
    for measure in load_measure_catalogue().measures:
        for offset in (-20, 5, 90, 365):
            value_num, value_text = 1.0, None
            if measure.type == "grade":
                value_num, value_text = None, "IIIb"
            elif measure.type not in ("yes_no",):
                value_num = float(measure.max or 100) * 0.55
            db.session.add(
                ClinicalMeasurement(
                    enrolment_id=enrolment.id,
                    measure_code=measure.id,
                    value_num=value_num,
                    value_text=value_text,
                    unit=measure.unit,
                    measured_on=index + timedelta(days=offset),
                )
            )
    for procedure_type, days in (("turp", 0), ("holep", 200)):
        db.session.add(
            Procedure(
                enrolment_id=enrolment.id,
                procedure_type=procedure_type,
                setting="operating_room",
                performed_on=index + timedelta(days=days),
            )
        )
    db.session.commit()
    return enrolment


def full_older_adult_record(enrol_patient: Any, language: str) -> Any:
    """An older adult lonelier and less safe at every follow-up than before (every score's
    alert and the flags), with long free text and the clinical measures too."""
    enrolment = enrol_patient(
        pilot="older-adults",
        arm="outreach",
        index_offset_days=-430,
        first_name="Anna-Liisa Maria",
        last_name="Kärkkäinen-Söderström",
        preferred_language=language,
    )
    best = {
        "ucla3": {"ucla1": 1, "ucla2": 1, "ucla3": 1},
        "djg6": {"djg1": 3, "djg2": 3, "djg3": 3, "djg4": 1, "djg5": 1, "djg6": 1},
        "lonely1": {"lonely1": 1},
        "insecurity": {"safe_daily": 5, "safe_home": 5, "safe_outdoors": 5, "knows_help": 5},
    }
    worst = {
        "ucla3": {"ucla1": 3, "ucla2": 3, "ucla3": 3},
        "djg6": {"djg1": 1, "djg2": 1, "djg3": 1, "djg4": 3, "djg5": 3, "djg6": 3},
        "lonely1": {"lonely1": 5},
        "insecurity": {"safe_daily": 1, "safe_home": 1, "safe_outdoors": 1, "knows_help": 1},
    }
    for n in range(5):
        other = enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=-430)
        for tp in ("baseline", "m6", "m12"):
            for instrument, answers in (best if n % 2 else worst).items():
                store_response(other, tp, instrument, answers)
    for tp, answers in (("baseline", best), ("m6", worst), ("m12", worst)):
        for instrument, values in answers.items():
            store_response(enrolment, tp, instrument, values)
    store_response(
        enrolment,
        "m6",
        "prem_services",
        {
            "felt_heard": 1,
            "help_mattered": 1,
            "involved": 1,
            "recommend": 1,
            "improve": LONG_TEXT[:2000],
            "comments": OTHER_TEXT[:4000],
        },
    )
    for measure in load_measure_catalogue().measures:
        if measure.type in ("integer", "decimal"):
            db.session.add(
                ClinicalMeasurement(
                    enrolment_id=enrolment.id,
                    measure_code=measure.id,
                    value_num=float(measure.min or 0) + 1.0,
                    unit=measure.unit,
                    measured_on=enrolment.index_date + timedelta(days=30),
                )
            )
    db.session.commit()
    return enrolment


RECORDS = {"bph": full_bph_record, "older-adults": full_older_adult_record}


@pytest.mark.one_backend
@pytest.mark.parametrize("pilot", ["bph", "older-adults"])
def test_a_full_record_fits_one_page_in_every_language(
    clinician: FlaskClient, enrol_patient: Any, tmp_path: Path, pilot: str
) -> None:
    enrolment = RECORDS[pilot](enrol_patient, "fi")
    with force_locale("en"):
        context = summary_context(db.session, enrolment, "en", date.today())
    # the record is full: every time point, key scores, alerts, measures, free text
    assert len(context["time_points"]) == 3 and len(context["scores"]) >= 2
    assert all(cell.patient for score in context["scores"] for cell in score.cells)
    assert any(cell.median not in ("", "–") for cell in context["scores"][0].cells)
    assert len(context["alerts"]) >= (3 if pilot == "bph" else 6), context["alerts"]
    assert len(context["measures"]) >= 5
    assert len(context["free_texts"]) == 2
    if pilot == "bph":
        assert len(context["procedures"]) == 2 and len(context["measures"]) == 9

    for language in LANGUAGES:
        response = clinician.get(
            f"/clinician/{pilot}/{enrolment.person.pseudonym}/summary.pdf",
            query_string={"lang_pdf": language},
        )
        assert response.status_code == 200, language
        pages, text = pdf_pages_and_text(response.data, tmp_path)
        assert pages == 1, (pilot, language, pages)
        assert_accessible(response.data, language, tables=2, figures=1)
        assert "Kärkkäinen-Söderström" in text or "Väisänen-Lindqvist" in text
        assert enrolment.person.pseudonym in text
        # the last things on the page made it onto the one page: free text and the source
        assert LONG_TEXT[:40] in text, language
        assert "Vaikuttavuus" in text.rsplit("Kiitos", 1)[-1], language


def test_long_free_text_is_shortened_at_a_word() -> None:
    short = shorten(LONG_TEXT)
    assert len(short) <= FREE_TEXT_MAX + 1 and short.endswith("…")
    assert LONG_TEXT.startswith(short[:-1])
    assert not short[:-1].endswith(" ")
    assert shorten("  Hyvä\n hoito.  ") == "Hyvä hoito."
