"""The pilot lead's import pages: upload (CSV and XLSX), the row-level report on screen and as
CSV, the log, templates, CSRF and who may use them."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.conftest import csrf_token, login
from tests.support.import_files import CODES, csv_bytes, good_rows, xlsx_bytes
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, CostItem, ImportBatch

TODAY = date.today()


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def lead(client: FlaskClient, make_user: Any, enrol_patient: Any) -> FlaskClient:
    enrol_patient("bph", "operating_room", identity_code=CODES[0])
    enrol_patient("bph", "outpatient_clinic", identity_code=CODES[1])
    make_user("lead", "pilot_lead", pilots=("bph",))
    assert login(client, "lead").status_code == 302
    return client


def upload(client: FlaskClient, kind: str, data: bytes, name: str, **extra: Any) -> Any:
    token = csrf_token(client, "/imports/bph/")
    form = {"kind": kind, "file": (io.BytesIO(data), name), "csrf_token": token, **extra}
    return client.post("/imports/bph/", data=form, content_type="multipart/form-data")


def cost_rows() -> int:
    return int(db.session.scalar(select(func.count()).select_from(CostItem)) or 0)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_good_file_is_stored_and_reported(lead: FlaskClient, fmt: str) -> None:
    header, rows = good_rows("resource_use", TODAY)
    data = xlsx_bytes(header, rows) if fmt == "xlsx" else csv_bytes(header, rows, sep=";")
    lead.get("/imports/bph/?lang=en")  # the session keeps the language for the flash message
    response = upload(lead, "resource_use", data, f"kustannukset.{fmt}")
    assert response.status_code == 302
    page = lead.get(response.headers["Location"] + "?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "3 rows stored; 0 were stored already." in html
    assert "<dt>Stored</dt><dd>3</dd>" in html
    assert "The file was imported." in html
    assert cost_rows() == 3
    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None and batch.user_id is not None and batch.status == "stored"
    assert batch.filename == f"kustannukset.{fmt}"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "import"))
    assert event is not None and event.actor == "lead" and event.pilot_code == "bph"


def test_a_bad_file_shows_the_row_report_in_the_users_language(lead: FlaskClient) -> None:
    data = csv_bytes(
        ["identity_code", "product_code", "quantity", "service_date"],
        [
            [CODES[0], "OR_MINUTE", '=HYPERLINK("http://x")', TODAY],
            ["010150-901X", "OR_MINUTE", "1", TODAY],
        ],
    )
    response = upload(lead, "resource_use", data, "bad.csv")
    assert response.status_code == 302
    assert cost_rows() == 0
    english = lead.get(response.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "Not a number." in english
    assert "Not a valid personal identity code: wrong check character." in english
    assert "010150-901X" not in english
    assert "******-****" in english
    assert '<td class="num">2</td>' in english and '<td class="num">3</td>' in english
    finnish = lead.get(response.headers["Location"] + "?lang=fi").get_data(as_text=True)
    assert '<html lang="fi">' in finnish

    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None and batch.status == "rejected"
    report = lead.get(f"/imports/bph/log/{batch.id}/errors.csv?lang=en")
    assert report.status_code == 200
    assert report.headers["Content-Type"].startswith("text/csv")
    text = report.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["line", "column", "value", "code", "message"]
    assert rows[1][:4] == ["2", "quantity", '\'=HYPERLINK("http://x")', "not_a_number"]
    assert rows[2][:4] == ["3", "identity_code", "******-****", "invalid_identity_code"]
    assert "010150-901X" not in text
    exported = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "export_import_report")
    )
    assert exported is not None


def test_the_csv_report_opens_in_a_spreadsheet_without_formulas(lead: FlaskClient) -> None:
    data = csv_bytes(
        ["identity_code", "product_code", "quantity", "service_date"],
        [[CODES[0], "@SUM(A1)", "+1+1", TODAY], [CODES[0], "-2+3", "1", "=1+2"]],
    )
    upload(lead, "resource_use", data, "evil.csv")
    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None
    text = lead.get(f"/imports/bph/log/{batch.id}/errors.csv").get_data(as_text=True)
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    reread = load_workbook(io.BytesIO(buffer.getvalue()))
    cells = [cell for row in reread.active.iter_rows() for cell in row]  # type: ignore[union-attr]
    assert all(cell.data_type != "f" for cell in cells)
    values = [str(cell.value) for cell in cells if cell.value is not None]
    assert not any(v.startswith(("=", "+", "-", "@")) for v in values)


def test_dry_run_stores_nothing_but_is_logged(lead: FlaskClient) -> None:
    header, rows = good_rows("resource_use", TODAY)
    response = upload(lead, "resource_use", csv_bytes(header, rows), "check.csv", dry_run="y")
    assert response.status_code == 302
    assert cost_rows() == 0
    log = lead.get("/imports/bph/log?lang=en").get_data(as_text=True)
    assert "check.csv" in log and "check only" in log


def test_the_log_shows_who_when_file_hash_and_counts(lead: FlaskClient) -> None:
    header, rows = good_rows("resource_use", TODAY)
    upload(lead, "resource_use", csv_bytes(header, rows), "first.csv")
    upload(lead, "resource_use", csv_bytes(header, rows), "again.csv")
    page = lead.get("/imports/bph/log?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for batch in db.session.scalars(select(ImportBatch)):
        assert batch.file_sha256[:12] in html
    assert "first.csv" in html and "again.csv" in html and "lead" in html
    again = db.session.scalar(select(ImportBatch).where(ImportBatch.filename == "again.csv"))
    assert again is not None and (again.rows_stored, again.rows_duplicate) == (0, 3)


def test_upload_page_documents_every_kind_with_templates(lead: FlaskClient) -> None:
    html = lead.get("/imports/bph/?lang=en").get_data(as_text=True)
    for kind in ("people", "procedures", "measurements", "resource_use", "direct_costs"):
        assert f'id="kind-{kind}"' in html
    assert "OR_MINUTE" in html and "turp" in html
    csv_template = lead.get("/imports/bph/templates/measurements.csv")
    assert csv_template.status_code == 200
    first = csv_template.get_data(as_text=True).lstrip("\ufeff").splitlines()[0]
    assert first == "identity_code,pseudonym,measure,value,unit,measured_on,time_point"
    xlsx = lead.get("/imports/bph/templates/people.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    assert sheet is not None and sheet["A1"].value == "identity_code"
    assert lead.get("/imports/bph/templates/nope.csv").status_code == 404


def test_upload_without_csrf_token_is_refused(lead: FlaskClient) -> None:
    header, rows = good_rows("resource_use", TODAY)
    response = lead.post(
        "/imports/bph/",
        data={"kind": "resource_use", "file": (io.BytesIO(csv_bytes(header, rows)), "x.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert cost_rows() == 0


def test_a_file_larger_than_the_limit_is_refused(lead: FlaskClient) -> None:
    lead.application.config["MAX_CONTENT_LENGTH"] = 2000
    token = csrf_token(lead, "/imports/bph/")
    response = lead.post(
        "/imports/bph/",
        data={
            "kind": "resource_use",
            "file": (io.BytesIO(b"x" * 5000), "big.csv"),
            "csrf_token": token,
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


@pytest.mark.parametrize("role", ["clinician", "management", "admin"])
def test_other_roles_get_403(client: FlaskClient, make_user: Any, role: str) -> None:
    make_user("someone", role)
    login(client, "someone")
    assert client.get("/imports/bph/").status_code == 403
    assert client.post("/imports/bph/", data={}).status_code == 403
    assert client.get("/imports/bph/log").status_code == 403


def test_a_lead_of_another_pilot_gets_403(lead: FlaskClient, make_user: Any) -> None:
    header, rows = good_rows("resource_use", TODAY)
    upload(lead, "resource_use", csv_bytes(header, rows), "x.csv")
    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None
    lead.post("/auth/logout", data={"csrf_token": csrf_token(lead, "/imports/bph/")})
    make_user("other", "pilot_lead", pilots=("older-adults",))
    login(lead, "other")
    assert lead.get("/imports/bph/").status_code == 403
    assert lead.get(f"/imports/bph/log/{batch.id}").status_code == 403
    assert lead.get(f"/imports/bph/log/{batch.id}/errors.csv").status_code == 403
    # the batch of one pilot is not reachable through another pilot's URL
    assert lead.get(f"/imports/older-adults/log/{batch.id}").status_code == 404


def test_navigation_links_to_imports_for_pilot_leads(lead: FlaskClient) -> None:
    html = lead.get("/imports/bph/").get_data(as_text=True)
    assert re.search(r'href="/imports/"', html)


# -- questionnaire answers ----------------------------------------------------------------------


def test_questionnaire_answers_upload_with_progress_template_and_notes(
    client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    from datetime import timedelta

    from vaikuttavuus.models import Response

    enrol_patient("bph", "operating_room", -100, identity_code=CODES[0])
    make_user("lead", "pilot_lead", pilots=("bph",))
    assert login(client, "lead").status_code == 302
    page = client.get("/imports/bph/?lang=en").get_data(as_text=True)
    # the kind, its item columns with their codes, the window option and the progress bar
    assert '<option value="responses">Questionnaire answers</option>' in page
    assert "<code>ipss_qol</code>" in page and "0 = Delighted" in page
    assert 'name="allow_outside_window"' in page
    assert 'class="import-progress" hidden' in page and "js/imports.js" in page
    template = client.get("/imports/bph/templates/responses.csv?example=1")
    header, example = template.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert header.split(",")[:4] == ["identity_code", "pseudonym", "time_point", "instrument"]
    assert "ucla1" not in header and "ipss1" in header
    assert example.split(",")[2:4] == ["baseline", "ipss"]

    day = TODAY - timedelta(days=110)
    items = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"]
    data = csv_bytes(
        ["identity_code", "time_point", "instrument", "completed_on", "proxy", *items],
        [[CODES[0], "baseline", "ipss", day, "yes", 1, 1, "", 1, 1, 1, 1, 2]],
    )
    # the page's script asks for JSON and goes where it says
    token = csrf_token(client, "/imports/bph/")
    sent = client.post(
        "/imports/bph/",
        data={"kind": "responses", "file": (io.BytesIO(data), "vastaukset.csv"),
              "csrf_token": token},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert sent.status_code == 200 and sent.is_json
    target = sent.get_json()["redirect"]
    report = client.get(target + "?lang=en").get_data(as_text=True)
    assert "1 rows stored; 0 were stored already." in report
    assert '<h2 id="notes-title">1 note</h2>' in report and "ipss3" in report
    stored = db.session.scalar(select(Response))
    assert stored is not None and (stored.mode, stored.proxy) == ("imported", True)
    # a form without a file: JSON 400, the script then sends the form the usual way
    missing = client.post(
        "/imports/bph/",
        data={"kind": "responses", "csrf_token": csrf_token(client, "/imports/bph/")},
        headers={"Accept": "application/json"},
    )
    assert missing.status_code == 400 and "file" in missing.get_json()["errors"]
