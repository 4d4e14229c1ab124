"""What a patient or a member of staff types into free text (issue 16, items 3 and 6).

* A personal identity code typed into a PREM free-text answer (the audit's ``131052-308T``;
  also with ``+``, ``A`` and the 2023 century signs ``Y X W V U B C D E F``) is stored masked,
  so it reaches no table, no long CSV, no FHIR export, no patient PDF and no clinician page.
  The patient pages and assisted entry store answers through the same rule
  (:func:`vaikuttavuus.domain.answers.free_text`).
* An answer ``x;=cmd|' /C calc'!A0;`` gives a long CSV in which no part of any cell, split as
  a Finnish spreadsheet splits it (on ``;``) or on ``,``, starts a formula.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import CSRF_FIELD, FORM_TOKEN_FIELD
from tests.support.isolation import fresh_globals_per_request
from tests.support.spreadsheet import formula_fragments
from tests.support.staff import staff_login
from tests.web.test_assisted_entry import walk
from tests.web.test_clinician_patient_view import pdf_text
from tests.web.test_identity_codes_never_stored import found_in_database
from tests.web.test_walking_skeleton import answer_pages
from vaikuttavuus.domain import identity
from vaikuttavuus.domain.answers import free_text
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Answer, Invitation, TimePoint

AUDIT_CODE = "131052-308T"  # the example code the audit typed
SIGNS = {"+": 1850, "-": 1952, "Y": 1960, "X": 1970, "W": 1980, "V": 1990, "U": 1999,
         "A": 2001, "B": 2005, "C": 2010, "D": 2015, "E": 2020, "F": 2023}  # fmt: skip
CODES = [
    identity.synthetic_identity_code(date(year, 3, 9), "female", random.Random(n), century_sign=s)
    for n, (s, year) in enumerate(SIGNS.items())
]
ATTACK = "x;=cmd|' /C calc'!A0;"


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.mark.one_backend
def test_free_text_masks_every_kind_of_identity_code() -> None:
    assert all(identity.is_valid(code) for code in CODES)
    text = free_text(f"Hetu {AUDIT_CODE}, vaimon {CODES[7].lower()}; " + " ".join(CODES))
    assert AUDIT_CODE not in text and not any(c in text or c.lower() in text for c in CODES)
    assert text.startswith("Hetu ******-****, vaimon ***********; ******+**** ")
    assert free_text(text) == text  # masking is stable
    assert free_text("Puh. 040 1234567, kävin 13.10.2052") == "Puh. 040 1234567, kävin 13.10.2052"


def _m3(enrolment: Any) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "m3")
    )
    assert invitation is not None
    return invitation


def test_codes_typed_into_answers_are_stored_masked_everywhere(
    app: Flask,
    client: FlaskClient,
    make_user: Any,
    enrol_patient: Any,
    patient_link: Any,
    tmp_path: Path,
) -> None:
    typed = f"Hetuni on {AUDIT_CODE}. Muut: " + ", ".join(CODES)
    # The patient answers the three-month questionnaires (PREM included) from the link.
    patient = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=-90)
    token = patient_link(patient, "m3")
    review = answer_pages(client, token, {"overall": "4", "improve": typed, "comments": ATTACK})
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    sent = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert sent.status_code == 302 and "/thanks" in sent.headers["Location"]

    # A clinician enters another patient's answers read over the phone.
    assisted = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=-90)
    make_user("kirjaaja", "clinician", pilots=("bph",))
    staff = Flask.test_client(app)
    staff_login(staff, "kirjaaja")
    base = f"/assisted/bph/{_m3(assisted).id}/"
    review = walk(staff, base, {"overall": "4", "improve": typed, "comments": ATTACK})
    submit = re.search(r'<form method="post" action="([^"]+)"[^>]*class="submit-form".*?</form>',
                       review, re.DOTALL)  # fmt: skip
    assert submit
    csrf = CSRF_FIELD.search(submit.group(0))
    assert csrf
    assert staff.post(submit.group(1), data={"csrf_token": csrf.group(1)}).status_code == 302

    pseudonyms = [patient.person.pseudonym, assisted.person.pseudonym]
    stored = db.session.scalars(select(Answer.value).where(Answer.item_id == "improve")).all()
    assert len(stored) == 2
    assert all(value.startswith("Hetuni on ******-****. Muut: ******+****, ") for value in stored)
    assert found_in_database([AUDIT_CODE, *CODES]) == []

    def no_code(text: str) -> bool:
        return not any(form in text for c in (AUDIT_CODE, *CODES) for form in (c, c.lower()))

    # The clinician's patient page and one-page PDF, the pilot lead's exports.
    for pseudonym in pseudonyms:
        page = staff.get(f"/clinician/bph/{pseudonym}")
        assert page.status_code == 200 and "Hetuni on ******-****" in page.get_data(as_text=True)
        assert no_code(page.get_data(as_text=True))
        pdf = staff.get(f"/clinician/bph/{pseudonym}/summary.pdf")
        assert pdf.status_code == 200
        text, _pages = pdf_text(pdf.data, tmp_path)
        assert "******-****" in text and no_code(text)
    make_user("vetaja", "pilot_lead", pilots=("bph",))
    lead = Flask.test_client(app)
    staff_login(lead, "vetaja")
    long_csv = lead.get("/exports/bph/long.csv").get_data(as_text=True)
    assert "Hetuni on ******-****" in long_csv and no_code(long_csv)
    fhir = lead.get("/exports/bph/responses.fhir.json")
    assert fhir.status_code == 200
    bundle = fhir.get_data(as_text=True)
    assert "Hetuni on ******-****" in bundle and json.loads(bundle)["resourceType"] == "Bundle"
    assert no_code(bundle)

    # The formula after the separator is neutralised, however the line is split.
    assert "x;'=cmd|' /C calc'!A0;" in long_csv
    assert formula_fragments(long_csv) == []
    wide_csv = lead.get("/exports/bph/wide.csv").get_data(as_text=True)
    assert formula_fragments(wide_csv) == []
