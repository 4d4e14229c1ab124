"""The pilot leads' export pages: who may download, what the files hold, and the audit trail.

CSV, XLSX (opened with openpyxl: no formula anywhere) and the FHIR Bundle (validated with
``fhir.resources``) through the test client with CSRF on; every download writes one audit
event with its parameters and row count; refusals write none.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.db.test_exports_service import FORMULA, SCRIPT, identity_code, store_response
from tests.support.isolation import fresh_globals_per_request
from tests.support.staff import staff_login
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Person
from vaikuttavuus.security.tokens import keyed_hash

DOWNLOADS = (
    "long.csv",
    "wide.csv",
    "long.xlsx",
    "wide.xlsx",
    "long-dictionary.csv",
    "wide-dictionary.csv",
    "responses.fhir.json",
)


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def data(app: Flask, enrol_patient: Any) -> list[Any]:
    people = []
    for n in range(3):
        enrolment = enrol_patient(
            arm="operating_room" if n else "outpatient_clinic",
            index_offset_days=-200 - n,
            first_name=f"Etu{n}",
            last_name=f"Suku{n}",
            email=f"henkilo{n}@example.org",
            phone=f"+3584012345{n}",
            postal_address=f"Testitie {n}",
            identity_code=identity_code(n),
        )
        store_response(
            enrolment,
            "baseline",
            "ipss",
            {"ipss1": n, "ipss2": 1, "ipss3": 2, "ipss4": 3, "ipss5": 1, "ipss6": 0, "ipss7": 1}
            | {"ipss_qol": 2},
        )
        people.append(enrolment)
    store_response(
        people[0],
        "m3",
        "prem_bph",
        {"overall": 4, "improve": FORMULA, "comments": SCRIPT, "recommend": 2},
    )
    older = enrol_patient(pilot="older-adults", arm="outreach", last_name="Vanhus")
    store_response(older, "baseline", "ucla3", {"ucla1": 1, "ucla2": 1, "ucla3": 1})
    return people


def _login(client: FlaskClient, make_user: Any, role: str, pilots: tuple[str, ...]) -> None:
    make_user(f"export_{role}_{'_'.join(pilots)}", role, pilots=pilots)
    staff_login(client, f"export_{role}_{'_'.join(pilots)}")


@pytest.fixture
def lead(client: FlaskClient, make_user: Any) -> FlaskClient:
    _login(client, make_user, "pilot_lead", ("bph",))
    return client


def _events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("export%")).order_by(AuditEvent.id)
        )
    )


def _csv(response: Any) -> list[dict[str, str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def _identifying() -> list[str]:
    rows = db.session.execute(
        select(
            Person.first_name,
            Person.last_name,
            Person.email,
            Person.phone,
            Person.postal_address,
            Person.identity_hash,
            Person.pseudonym,
        )
    ).all()
    return [value for row in rows for value in row if value]


def test_the_export_page_offers_every_download(lead: FlaskClient, data: list[Any]) -> None:
    page = lead.get("/exports/bph/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in DOWNLOADS:
        assert f"/exports/bph/{name}" in html, name
    assert 'name="date_shift"' in html
    assert lead.get("/exports/").status_code == 302  # one pilot: straight to it
    nav = lead.get("/pilot/bph/").get_data(as_text=True)
    assert 'href="/exports/"' in nav
    assert _events() == []  # the page itself shows no personal data


def test_csv_downloads_are_pseudonymised_neutralised_and_audited(
    lead: FlaskClient, data: list[Any]
) -> None:
    response = lead.get("/exports/bph/long.csv", query_string={"date_shift": "5"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert list(rows[0]) == [
        "person_key",
        "arm",
        "time_point",
        "instrument",
        "version",
        "item_id",
        "value",
        "value_num",
        "submitted_date",
        "language",
        "mode",
        "proxy",
    ]
    text = response.get_data(as_text=True)
    for value in _identifying():
        assert value not in text, value
    assert {row["person_key"] for row in rows} == {
        keyed_hash(str(e.person_id), "export") for e in data
    }
    improve = next(row for row in rows if row["item_id"] == "improve")
    assert improve["value"] == "'" + FORMULA
    assert next(row for row in rows if row["item_id"] == "comments")["value"] == SCRIPT
    (event,) = _events()
    assert event.action == "export_data" and event.pilot_code == "bph"
    assert event.details == {
        "shape": "long",
        "format": "csv",
        "rows": len(rows),
        "date_shift_days": 5,
        "from": None,
        "to": None,
    }
    assert event.actor.startswith("export_pilot_lead")

    wide = _csv(lead.get("/exports/bph/wide.csv"))
    assert len(wide) == 3
    assert _events()[-1].details["rows"] == 3
    assert {row["ipss_total_baseline"] for row in wide} == {"8", "9", "10"}
    dictionary = _csv(lead.get("/exports/bph/wide-dictionary.csv"))
    assert [row["column"] for row in dictionary] == list(wide[0])
    assert _events()[-1].action == "export_dictionary"


def test_xlsx_downloads_hold_no_formula(lead: FlaskClient, data: list[Any]) -> None:
    for shape in ("long", "wide"):
        response = lead.get(f"/exports/bph/{shape}.xlsx")
        assert response.status_code == 200
        assert response.mimetype.endswith("spreadsheetml.sheet")
        workbook = load_workbook(io.BytesIO(response.data))
        assert workbook.sheetnames == ["data", "dictionary"]
        header = [c.value for c in next(workbook["data"].iter_rows(max_row=1))]
        described = [
            row[0]
            for row in workbook["dictionary"].iter_rows(min_row=2, values_only=True)
            if not str(row[0]).startswith("item_id =")
        ]
        assert described == header
        values = []
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (shape, sheet.title, cell.coordinate)
                    values.append(str(cell.value))
        text = "\n".join(values)
        for value in _identifying():
            assert value not in text
        event = _events()[-1]
        assert event.details["format"] == "xlsx" and event.details["shape"] == shape
        assert event.details["rows"] == workbook["data"].max_row - 1
    long_book = load_workbook(io.BytesIO(lead.get("/exports/bph/long.xlsx").data))
    improve = [r for r in long_book["data"].iter_rows(values_only=True) if r[5] == "improve"]
    assert improve[0][6] == "'" + FORMULA


def test_fhir_bundle_download_validates(lead: FlaskClient, data: list[Any]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    start = (date.today() - timedelta(days=201)).isoformat()
    response = lead.get("/exports/bph/responses.fhir.json", query_string={"from": start})
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    bundle = json.loads(response.get_data(as_text=True))
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    assert len(bundle["entry"]) == 3  # the two people enrolled since `start`: 2 IPSS + 1 PREM
    event = _events()[-1]
    assert event.action == "export_fhir"
    assert event.details == {
        "format": "fhir",
        "rows": 3,
        "date_shift_days": 0,
        "from": start,
        "to": None,
    }
    for value in _identifying():
        assert value not in response.get_data(as_text=True)


def test_bad_options_are_refused_with_a_message_and_not_audited(
    lead: FlaskClient, data: list[Any]
) -> None:
    for query in (
        {"date_shift": "400"},
        {"date_shift": "x"},
        {"from": "31.12.2025"},
        {"from": "2025-06-01", "to": "2025-01-01"},
    ):
        for name in ("long.csv", "wide.xlsx", "responses.fhir.json", "long-dictionary.csv"):
            response = lead.get(f"/exports/bph/{name}", query_string=query)
            assert response.status_code == 400, (name, query)
            html = response.get_data(as_text=True)
            assert 'class="error"' in html and "<h1" in html
    assert _events() == []


@pytest.mark.parametrize(
    ("role", "pilots"),
    [
        ("management", ()),
        ("admin", ()),
        ("clinician", ("bph",)),
        ("pilot_lead", ("older-adults",)),
    ],
)
def test_only_the_pilots_own_leads_may_export(
    client: FlaskClient, make_user: Any, data: list[Any], role: str, pilots: tuple[str, ...]
) -> None:
    _login(client, make_user, role, pilots)
    for name in ("", *DOWNLOADS):
        assert client.get(f"/exports/bph/{name}").status_code == 403, (role, name)
    assert _events() == []


def test_anonymous_users_are_sent_to_log_in(client: FlaskClient, data: list[Any]) -> None:
    response = client.get("/exports/bph/long.csv")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert _events() == []


def test_the_other_pilot_exports_its_own_people_only(
    client: FlaskClient, make_user: Any, data: list[Any]
) -> None:
    _login(client, make_user, "pilot_lead", ("older-adults",))
    rows = _csv(client.get("/exports/older-adults/long.csv"))
    assert {row["instrument"] for row in rows} == {"ucla3"}
    assert len({row["person_key"] for row in rows}) == 1
    assert re.fullmatch(r"[0-9a-f]{64}", rows[0]["person_key"])
