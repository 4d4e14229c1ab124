"""Costs on the pilot page and on the cost page are one set of figures.

The cohort page's Costs section shows costs by arm, by cost centre and by product, and the
cost page (``/costs/<code>/``) shows the very same tables for the same filters (period, arm,
unit): the same persons (care cycle ended before the data date), the same n and means, equal
to the analytics' published tables; its list of patients is those persons. A count that is
really zero is shown as 0 (its figures as –), not as "<5".
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.support.isolation import fresh_globals_per_request
from tests.web.report_numbers import (
    Formats,
    HtmlTable,
    Page,
    assert_rows,
    expected_rows,
    finnish,
    from_published,
    in_language,
    layouts,
    read_page,
    service_columns,
)
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Person, Pilot, ServiceExposure
from vaikuttavuus.services.analytics import ALL, CohortAnalysis, Filters
from vaikuttavuus.services.cohort_view import Labels, service_view
from vaikuttavuus.services.users import create_user

COST_TABLES = ("costs", "costs_by_cost_centre", "costs_by_product")


@pytest.fixture
def lead(cohort_app: Flask) -> FlaskClient:  # noqa: F811
    fresh_globals_per_request(cohort_app)
    create_user(
        db.session, username="kustannukset", password=PASSWORD, role="pilot_lead",
        pilot_codes=("bph", "older-adults"),
    )  # fmt: skip
    db.session.commit()
    client = cohort_app.test_client()
    assert login(client, "kustannukset").status_code == 302
    return client


def pilot(code: str) -> Pilot:
    found = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert found is not None
    return found


def page(client: FlaskClient, url: str) -> Page:
    response = client.get(url)
    assert response.status_code == 200, url
    return read_page(response.get_data(as_text=True))


def patient_list(client: FlaskClient, url: str) -> list[list[str]]:
    """Every row of the cost page's list of patients, over all its pages."""
    rows: list[list[str]] = []
    number = 1
    while True:
        separator = "&" if "?" in url else "?"
        html = client.get(f"{url}{separator}page={number}").get_data(as_text=True)
        table = next(
            t for t in read_page(html).tables if t.headers and t.headers[0] == "Pseudonyymi"
        )
        rows += [] if table.empty else table.rows
        if 'rel="next"' not in html:
            return rows
        number += 1


def query_cases(code: str) -> list[dict[str, str]]:
    analysis = CohortAnalysis(db.session, pilot(code))
    roster = analysis.roster
    middle = roster["index_date"].sort_values().iloc[len(roster) // 2].date()
    unit = roster["unit"].dropna().value_counts().index[0]
    return [
        {},
        {"arm": analysis.arms[0]},
        {"unit": str(unit)},
        {"from": "2000-01-01", "to": middle.isoformat()},
    ]


@pytest.mark.parametrize("code", ["bph", "older-adults"])
def test_both_pages_show_the_same_costs_of_the_same_persons(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    code: str,
) -> None:
    for query in query_cases(code):
        filters = Filters(
            period=(
                pd.Timestamp(query["from"]).date() if "from" in query else None,
                pd.Timestamp(query["to"]).date() if "to" in query else None,
            ),
            arm=query.get("arm"),
            unit=query.get("unit"),
        )
        analysis = CohortAnalysis(db.session, pilot(code), filters)
        cohort_page = page(lead, f"/pilot/{code}/?" + urlencode({"section": "costs", **query}))
        costs_page = page(lead, f"/costs/{code}/?" + urlencode(query))
        with finnish(cohort_app):
            layout, fmt = layouts(Labels(analysis, "fi")), Formats("fi")
            for name, published in zip(
                COST_TABLES,
                (analysis.costs.by_arm, analysis.costs.by_cost_centre, analysis.costs.by_product),
                strict=True,
            ):
                wanted = expected_rows(from_published(published), layout[name], fmt)
                assert wanted, (code, query, name)
                for shown in (cohort_page, costs_page):
                    table: HtmlTable = shown.by_csv(name)
                    assert_rows(table.rows, wanted, f"{code} {query} {name}")
        # n and the mean of everyone are the persons listed on the cost page
        everyone = analysis.costs.by_arm.table.set_index("arm").loc[ALL]
        persons = analysis.cost_persons
        listed = patient_list(lead, f"/costs/{code}/?" + urlencode(query))
        assert len(listed) == len(persons) == int(everyone["n"]), (code, query)
        assert persons["total_eur"].mean() == pytest.approx(everyone["mean_eur"])
        pseudonyms = dict(
            db.session.execute(select(Person.id, Person.pseudonym)).all()  # type: ignore[arg-type]
        )
        roster = analysis.roster.set_index("enrolment_id")["person_id"]
        expected_names = sorted(pseudonyms[roster[e]] for e in persons["enrolment_id"])
        assert sorted(row[0] for row in listed) == expected_names
        if "arm" in query:
            arm_name = Labels(analysis, "fi").arm(query["arm"])
            assert {row[1] for row in listed} <= {arm_name}


def test_the_cost_page_says_who_is_counted(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
) -> None:
    analysis = CohortAnalysis(db.session, pilot("bph"))
    html = lead.get("/costs/bph/?lang=en").get_data(as_text=True)
    complete = int(analysis.cycle_complete.sum())
    message = re.sub(r"\s+", " ", html)
    assert (
        f"{complete} of {len(analysis.roster)} persons within these filters; the care cycle of "
        f"{len(analysis.roster) - complete} has not ended yet" in message
    )


def test_a_count_that_is_really_zero_is_shown_as_zero(
    cohort_app: Flask,  # noqa: F811
) -> None:
    """No cost recorded on any service: the exposed with a cost are 0 (not "<5") and the
    cost per point – (nothing to show)."""
    db.session.execute(update(ServiceExposure).values(cost_eur=None))
    db.session.commit()
    analysis = CohortAnalysis(db.session, pilot("older-adults"))
    section = analysis.services("ucla3.total", "service_type")
    table = section.cost
    assert len(table.table) and (table.table["n_with_cost"] == 0).all()
    with in_language(cohort_app, "fi"):
        labels = Labels(analysis, "fi")
        view = service_view(analysis, labels, "ucla3.total", "service_type")
        wanted = expected_rows(
            from_published(table), service_columns(labels, "service_type")[
                "service_cost_per_point"], Formats("fi"),
        )  # fmt: skip
    shown = [[cell.text for cell in row] for row in view["cost"].rows]
    assert_rows(shown, wanted, "cost per point without costs")
    for row in shown:
        assert row[1] == "0" and row[2] == "–" and row[6] == "–", row
    assert "<5" not in {cell for row in shown for cell in row}


def test_costs_by_product_add_up_to_the_mean_cost_of_each_arm(
    cohort_app: Flask,  # noqa: F811
) -> None:
    analysis = CohortAnalysis(db.session, pilot("bph"))
    by_arm = analysis.costs.by_arm.table.set_index("arm")
    products = analysis.costs.by_product.table
    centres = analysis.costs.by_cost_centre.table
    for arm in analysis.arms:
        mean = float(by_arm.loc[arm, "mean_eur"])
        assert products.loc[products["arm"] == arm, "mean_eur"].sum() == pytest.approx(mean)
        assert centres.loc[centres["arm"] == arm, "mean_eur"].sum() == pytest.approx(mean)
        assert products.loc[products["arm"] == arm, "share"].sum() == pytest.approx(1.0)
        assert set(products.loc[products["arm"] == arm, "n"]) == {by_arm.loc[arm, "n"]}
