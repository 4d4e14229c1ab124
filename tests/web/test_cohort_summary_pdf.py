"""The pilot lead's cohort summary PDF (``/pilot/<code>/summary.pdf``) shows the cohort page's
numbers: every row of its enrolment, response-rate and primary-outcome tables equals the
analytics' published tables (``services.analytics``) for the same filters, formatted by the
test itself (``tests/web/report_numbers.py``), so a count below the minimum cell size is
``<5`` there as on the page and never its value."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.support.isolation import fresh_globals_per_request
from tests.support.pdf_structure import assert_accessible
from tests.web.report_numbers import (
    Formats,
    assert_tables_in_pdf,
    expected_rows,
    from_published,
    in_language,
    layouts,
    outcome_columns,
    pdf_text,
)
from vaikuttavuus import queries
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Pilot
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.users import create_user


@pytest.fixture
def lead(cohort_app: Flask) -> FlaskClient:  # noqa: F811
    fresh_globals_per_request(cohort_app)
    create_user(
        db.session, username="vastaava", password=PASSWORD, role="pilot_lead",
        pilot_codes=("bph", "older-adults"),
    )  # fmt: skip
    db.session.commit()
    client = cohort_app.test_client()
    assert login(client, "vastaava").status_code == 302
    return client


def pilot(code: str) -> Pilot:
    found = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert found is not None
    return found


def expected_tables(
    app: Flask, code: str, filters: Filters, language: str
) -> tuple[CohortAnalysis, list[tuple[str, list[Any]]]]:
    """The summary's tables as the analytics publish them, in the PDF's order."""
    analysis = CohortAnalysis(db.session, pilot(code), filters)
    with in_language(app, language):
        labels = Labels(analysis, language)
        layout, fmt = layouts(labels), Formats(language)
        primary = analysis.outcomes.primary
        tables = [
            ("enrolment", expected_rows(from_published(analysis.enrolment.table),
                                        layout["enrolment"], fmt)),
            ("response_rates", expected_rows(from_published(analysis.response_rates.table),
                                             layout["response_rates"], fmt)),
            ("primary outcome", expected_rows(
                from_published(analysis.outcomes.summary),
                outcome_columns(labels, primary, with_responders=True, unpaired=False),
                fmt,
                keep=lambda record: record["score"] == primary,
            )),
        ]  # fmt: skip
    return analysis, tables


@pytest.mark.parametrize(
    ("code", "language"), [("bph", "fi"), ("older-adults", "sv"), ("bph", "sv")]
)
def test_the_summary_shows_the_analytics_numbers(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
    code: str,
    language: str,
) -> None:
    response = lead.get(f"/pilot/{code}/summary.pdf", query_string={"lang_pdf": language})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert_accessible(response.data, language, tables=8, figures=2)
    text = pdf_text(response.data, tmp_path)
    analysis, tables = expected_tables(cohort_app, code, Filters(), language)
    assert tables[2][1], "the primary outcome has rows"
    assert_tables_in_pdf(text, tables)
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "export_pdf"
    assert event.details["filters"] == analysis.filters.to_dict()


def test_the_page_filters_apply_and_small_counts_are_hidden(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
) -> None:
    people = queries.enrolment_overview(db.session, pilot("bph").id)
    people["index_date"] = pd.to_datetime(people["index_date"])
    ordered = people.sort_values("index_date")
    clinic = ordered[ordered["arm"] == "outpatient_clinic"]
    end: date = clinic["index_date"].iloc[2].date()  # three outpatient-clinic patients
    first: date = ordered["index_date"].iloc[0].date()
    small = ordered[ordered["index_date"] <= pd.Timestamp(end)]
    assert 1 <= int((small["arm"] == "outpatient_clinic").sum()) <= 4

    response = lead.get(
        "/pilot/bph/summary.pdf",
        query_string={"lang_pdf": "fi", "from": first.isoformat(), "to": end.isoformat()},
    )
    assert response.status_code == 200
    text = pdf_text(response.data, tmp_path)
    analysis, tables = expected_tables(cohort_app, "bph", Filters(period=(first, end)), "fi")
    assert_tables_in_pdf(text, tables)
    # the small arm's counts are hidden, in the analytics and so in the PDF
    enrolment = analysis.enrolment.table
    position = enrolment.table.index[enrolment.table["arm"] == "outpatient_clinic"][0]
    assert enrolment.is_primary(int(position), "enrolled")
    assert "Poliklinikka <5" in text
    for count in range(1, 5):
        assert f"Poliklinikka {count} " not in text
    assert f"{first.day}.{first.month}.{first.year}" in text
    assert f"{end.day}.{end.month}.{end.year}" in text
