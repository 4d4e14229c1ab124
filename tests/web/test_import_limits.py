"""Import denial of service (issue 16, item 2): a pathological header costs a moment and a few
bytes, not minutes, gigabytes and a log page that no longer opens.

The audit sent a 7.9 MB ``resource_use`` CSV with 1,000,000 header columns: the check took
246 s and 4.4 GB, all 1,000,004 header errors were stored (189 MB in ``import_batches``), the
import log page then took 11.7 s and its errors CSV was 141 MB.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tests.conftest import csrf_token, login
from tests.support.import_files import csv_bytes
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.domain.imports import (
    MAX_COLUMNS,
    ImportContext,
    ImportFileError,
    read_table,
    table_from_rows,
    validate,
)
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, ImportBatch

MILLION_COLUMNS = (",".join(f"c{n}" for n in range(1_000_000)) + "\n1,2\n").encode()


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def lead(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("lead", "pilot_lead", pilots=("bph",))
    assert login(client, "lead").status_code == 302
    return client


def upload(client: FlaskClient, data: bytes, name: str) -> Any:
    token = csrf_token(client, "/imports/bph/")
    file = FileStorage(io.BytesIO(data), filename=name, content_type="text/csv")
    form = {"kind": "resource_use", "file": file, "csrf_token": token}
    # encoded in memory: the test client would spool a large body to a file it never closes
    boundary, body = encode_multipart(MultiDict(form))
    return client.post(
        "/imports/bph/", data=body, content_type=f'multipart/form-data; boundary="{boundary}"'
    )


def test_a_header_of_a_million_columns_is_refused_before_it_is_read(lead: FlaskClient) -> None:
    assert len(MILLION_COLUMNS) > 7_800_000  # the audit's file
    response = upload(lead, MILLION_COLUMNS, "Matti Meikäläinen kustannukset.csv")
    assert response.status_code == 302
    batch = db.session.scalar(select(ImportBatch))
    assert batch is not None and batch.status == "rejected"
    assert batch.error_count == 1
    assert [e["code"] for e in batch.errors] == ["too_many_columns"]
    assert batch.errors[0]["params"] == {"found": 1_000_000, "maximum": MAX_COLUMNS}

    # The report, the log and the errors CSV stay small, and say what to do.
    report = lead.get(response.headers["Location"] + "?lang=en")
    assert report.status_code == 200
    assert (
        f"The header has 1000000 columns; a file can have at most {MAX_COLUMNS}."
        in report.get_data(as_text=True)
    )
    assert len(report.get_data()) < 100_000
    log = lead.get("/imports/bph/log")
    assert log.status_code == 200 and len(log.get_data()) < 100_000
    errors = lead.get(f"/imports/bph/log/{batch.id}/errors.csv")
    assert errors.status_code == 200 and len(errors.get_data()) < 1_000

    # The file name (which names a person) is in the pilot's import log, not in the audit trail.
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "import"))
    assert event is not None
    assert "Meikäläinen" not in repr(event.details)
    assert event.details["sha256"] == batch.file_sha256


def test_a_wide_xlsx_header_is_refused_too() -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append([f"c{n}" for n in range(MAX_COLUMNS + 1)])
    sheet.append(["1"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with pytest.raises(ImportFileError) as refused:
        read_table(buffer.getvalue())
    assert [e.code for e in refused.value.errors] == ["too_many_columns"]


def test_a_header_just_wide_enough_is_read() -> None:
    header = [f"c{n}" for n in range(MAX_COLUMNS)]
    table = read_table(csv_bytes(header, [["x"] * MAX_COLUMNS]))
    assert table.columns == tuple(header)


def test_header_problems_are_capped_like_row_errors(app: Flask) -> None:
    """The 1,000-error cap holds for the header checks: the rest are only counted."""
    from vaikuttavuus.models import Pilot
    from vaikuttavuus.services.imports import import_context

    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    context: ImportContext = import_context(db.session, pilot, "resource_use")
    header = ["identity_code", *(f"extra_{n}" for n in range(60))]
    table = table_from_rows(header, [["x"] * len(header)])
    with pytest.raises(ImportFileError) as refused:
        validate("resource_use", table, context, max_errors=10)
    problems = refused.value
    assert len(problems.errors) == 10
    assert problems.count == 60 + 3  # 60 unknown columns, 3 required columns missing


def test_uploaded_workbooks_are_parsed_with_defusedxml() -> None:
    """openpyxl uses defusedxml when it is installed: no entity expansion or external
    entities from an uploaded XLSX (OWASP ASVS 5.5.2)."""
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML


def test_a_workbook_that_unpacks_too_far_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip bomb posing as XLSX is refused from its directory, before anything unpacks."""
    import zipfile

    from vaikuttavuus.domain import imports

    monkeypatch.setattr(imports, "MAX_UNPACKED_XLSX_BYTES", 50_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * 100_000)
    with pytest.raises(ImportFileError) as refused:
        read_table(buffer.getvalue())
    assert [e.code for e in refused.value.errors] == ["file_too_large"]
