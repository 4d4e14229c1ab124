"""The outside audit's observations (issue 16): searches take ``%`` and ``_`` literally, and
the administrator's data-protection page shows no clinical data."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.isolation import fresh_globals_per_request
from tests.support.staff import staff_login


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


def test_searches_take_like_wildcards_literally(
    app: Flask, client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    people = [enrol_patient(last_name=name) for name in ("Aalto", "Berg_man")]
    pseudonyms = [e.person.pseudonym for e in people]
    make_user("etsija", "pilot_lead", pilots=("bph",))
    staff_login(client, "etsija")

    def found(url: str, query: str) -> list[str]:
        page = client.get(url, query_string={"q": query})
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        return [p for p in pseudonyms if p in html]

    for url in ("/clinician/bph/", "/invitations/bph/"):
        assert found(url, "%") == [], url  # was: everyone
        assert found(url, "a_t") == [], url  # "_" matched any character
        assert found(url, "g_m") == [pseudonyms[1]], url  # a literal underscore still matches
        assert found(url, "aalto") == [pseudonyms[0]], url


def test_the_administrators_privacy_page_shows_no_clinical_data(
    app: Flask, client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    enrolment = enrol_patient(arm="outpatient_clinic", index_offset_days=-123)
    arm = enrolment.arm.label("fi")
    index_date = f"{enrolment.index_date.day}.{enrolment.index_date.month}."
    url = f"/privacy/{enrolment.person.pseudonym}"
    make_user("paakayttaja", "admin", pilots=())
    staff_login(client, "paakayttaja")
    page = client.get(url).get_data(as_text=True)
    assert "/withdraw/bph" in page and "/erase" in page  # what an administrator may do
    assert arm not in page and index_date not in page
    lead = app.test_client()
    make_user("vastaava", "pilot_lead", pilots=("bph",))
    staff_login(lead, "vastaava")
    shown = lead.get(url).get_data(as_text=True)
    assert arm in shown and index_date in shown
