"""The pilot lead's cost pages show exactly the domain's episode costs and cohort summary, hide
small arms, and are closed to every other role and pilot. The patients' care cycles (−90 … 365
days around the index date) have ended, as the cohort figures count only such persons."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from babel.numbers import format_decimal, format_percent
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import login
from tests.support.import_files import csv_bytes
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.definitions.costing import load_costing
from vaikuttavuus.domain.costing import episode_costs, mean_confidence_interval
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent
from vaikuttavuus.paths import costing_dir
from vaikuttavuus.services.imports import run_import

TODAY = date.today()
INDEX_OFFSET = -400
"""The index date, days from today: the care cycle (−90 … 365 days) has ended."""
USED = TODAY + timedelta(days=INDEX_OFFSET + 10)
"""When the resource use of the patients happened (in the care cycle)."""
# (arm, products used) – five patients in the operating room, two at the outpatient clinic
PATIENTS = [
    ("operating_room", [("OR_MINUTE", "60"), ("UROLOGY_WARD_DAY", "1,5"), ("PACU_HOUR", "2")]),
    ("operating_room", [("OR_MINUTE", "75"), ("UROLOGY_WARD_DAY", "2")]),
    ("operating_room", [("OR_MINUTE", "45"), ("PATHOLOGY_SAMPLE", "1")]),
    ("operating_room", [("OR_MINUTE", "90"), ("UROLOGY_WARD_DAY", "3"), ("LAB_PANEL", "2")]),
    ("operating_room", [("OR_MINUTE", "55")]),
    ("outpatient_clinic", [("PROC_ROOM_MINUTE", "30"), ("REZUM_DEVICE", "1")]),
    ("outpatient_clinic", [("PROC_ROOM_MINUTE", "25"), ("UROLIFT_IMPLANT", "4")]),
]


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def cohort(app: Flask, enrol_patient: Any) -> list[Any]:
    enrolments = [
        enrol_patient("bph", arm, index_offset_days=INDEX_OFFSET) for arm, _uses in PATIENTS
    ]
    rows = []
    for enrolment, (_arm, uses) in zip(enrolments, PATIENTS, strict=True):
        for product, quantity in uses:
            rows.append([enrolment.person.pseudonym, product, quantity, USED])
    # one row outside the care cycle (−90 … 365 days): counted, not costed
    rows.append([enrolments[0].person.pseudonym, "NURSE_PHONE", "1", USED - timedelta(days=200)])
    direct = [[enrolments[1].person.pseudonym, "1200", "2024", USED + timedelta(days=10), ""]]
    for kind, header, data in (
        ("resource_use", ["pseudonym", "product_code", "quantity", "service_date"], rows),
        (
            "direct_costs",
            ["pseudonym", "amount_eur", "price_year", "service_date", "cost_centre"],
            direct,
        ),
    ):
        outcome = run_import(
            db.session,
            kind=kind,
            data=csv_bytes(header, data),
            filename="c.csv",
            pilot_code="bph",
            actor="test",
        )
        assert outcome.status == "stored", outcome.errors
    db.session.commit()
    return enrolments


def expected(enrolments: list[Any]) -> Any:
    """The domain's episode costs from the imported values, independently of the views."""
    catalogue = load_costing(costing_dir())
    uses = []
    for enrolment, (_arm, products) in zip(enrolments, PATIENTS, strict=True):
        for product, quantity in products:
            uses.append(
                (
                    enrolment.id,
                    product,
                    float(quantity.replace(",", ".")),
                    USED,
                    None,
                    None,
                )
            )
    uses.append((enrolments[0].id, "NURSE_PHONE", 1.0, USED - timedelta(days=200), None, None))
    uses.append((enrolments[1].id, None, None, USED + timedelta(days=10), 1200.0, 2024.0))
    frame = pd.DataFrame(
        uses,
        columns=[
            "enrolment_id",
            "product_code",
            "quantity",
            "service_date",
            "amount_eur",
            "price_year",
        ],
    )
    people = pd.DataFrame(
        {
            "enrolment_id": [e.id for e in enrolments],
            "index_date": [pd.Timestamp(e.index_date) for e in enrolments],
        }
    )
    costs = episode_costs(frame, people, -90, 365, catalogue, 2025, id_col="enrolment_id")
    arms = pd.Series(
        pd.Categorical(
            [arm for arm, _ in PATIENTS], categories=["operating_room", "outpatient_clinic"]
        ),
        index=pd.Index([e.id for e in enrolments], name="enrolment_id"),
    )
    return costs, costs.summary(arms)


def euros(value: float, digits: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale="en")


@pytest.fixture
def lead(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("lead", "pilot_lead", pilots=("bph",))
    assert login(client, "lead").status_code == 302
    return client


def test_cohort_page_shows_the_domain_figures_and_hides_small_arms(
    lead: FlaskClient, cohort: list[Any]
) -> None:
    costs, summary = expected(cohort)
    page = lead.get("/costs/bph/?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # everyone: the domain's figures over the seven patients
    totals = costs.totals.to_numpy()
    low, high = mean_confidence_interval(totals)
    for figure in (totals.mean(), float(pd.Series(totals).median()), low, high):
        assert euros(figure) in html, figure
    assert '<th scope="row">All</th><td class="num">7</td>' in html
    # the outpatient arm has 2 people (< 5): its n and every figure are hidden, and so is the
    # operating room's (with the total it would give the outpatient arm's away), its cost
    # structure too
    assert '<th scope="row">Outpatient clinic</th><td class="num">&lt;5</td>' in html
    assert '<th scope="row">Operating room</th><td class="num">x</td>' in html
    for arm in ("operating_room", "outpatient_clinic"):
        assert euros(summary.by_arm.loc[arm, "mean_eur"]) not in html, arm
    assert html.count("No data for these filters.") == 2  # by cost centre, by product
    # every patient's total, in the list
    for enrolment in cohort:
        assert euros(costs.totals[enrolment.id]) in html
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "view_cost_report"))
    assert event is not None


def test_cohort_page_shows_the_structure_of_the_arms_shown(
    lead: FlaskClient, cohort: list[Any], enrol_patient: Any
) -> None:
    """With five patients in each arm both arms, and their cost structure, are shown."""
    extra = [
        enrol_patient("bph", "outpatient_clinic", index_offset_days=INDEX_OFFSET) for _ in range(3)
    ]
    outcome = run_import(
        db.session,
        kind="resource_use",
        data=csv_bytes(
            ["pseudonym", "product_code", "quantity", "service_date"],
            [[e.person.pseudonym, "PROC_ROOM_MINUTE", "40", USED] for e in extra],
        ),
        filename="lisat.csv",
        pilot_code="bph",
        actor="test",
    )
    assert outcome.status == "stored", outcome.errors
    db.session.commit()
    _costs, summary = expected(cohort)
    html = lead.get("/costs/bph/?lang=en").get_data(as_text=True)
    row = summary.by_arm.loc["operating_room"]
    assert row["n"] == 5
    for figure in ("mean_eur", "median_eur", "ci_low_eur", "ci_high_eur"):
        assert euros(row[figure]) in html, figure
    structure = summary.by_cost_centre
    for item in structure[structure["arm"] == "operating_room"].itertuples():
        if item.total_eur:
            assert euros(item.mean_eur) in html
            assert format_percent(item.share, locale="en") in html
    assert '<img src="data:image/svg+xml;base64,' in html
    assert '<th scope="row">Outpatient clinic</th><td class="num">5</td>' in html


def test_patient_page_shows_the_domain_breakdown(lead: FlaskClient, cohort: list[Any]) -> None:
    costs, _summary = expected(cohort)
    for enrolment in cohort[:2]:
        page = lead.get(f"/costs/bph/{enrolment.person.pseudonym}?lang=en")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        own = costs.person(enrolment.id)
        assert euros(own["total_eur"], 2) in html
        for eur in [*own["by_product"].values(), *own["by_cost_centre"].values()]:
            assert euros(eur, 2) in html
    first = lead.get(f"/costs/bph/{cohort[0].person.pseudonym}?lang=en").get_data(as_text=True)
    assert "3 rows fall within the care cycle; 1 fall outside it" in first
    second = lead.get(f"/costs/bph/{cohort[1].person.pseudonym}?lang=en").get_data(as_text=True)
    assert "Direct costs without a product" in second
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "view_patient_costs")
    ).all()
    assert [e.person_id for e in events] == [cohort[0].person_id, cohort[1].person_id] * 2


def test_an_empty_pilot_has_a_page(lead: FlaskClient) -> None:
    page = lead.get("/costs/bph/?lang=en")
    assert page.status_code == 200
    assert "No one is enrolled in this pilot yet." in page.get_data(as_text=True)


@pytest.mark.parametrize("role", ["clinician", "management", "admin"])
def test_other_roles_get_403(
    client: FlaskClient, make_user: Any, cohort: list[Any], role: str
) -> None:
    make_user("someone", role)
    login(client, "someone")
    assert client.get("/costs/bph/").status_code == 403
    assert client.get(f"/costs/bph/{cohort[0].person.pseudonym}").status_code == 403


def test_a_lead_of_another_pilot_gets_403(
    client: FlaskClient, make_user: Any, cohort: list[Any]
) -> None:
    make_user("other", "pilot_lead", pilots=("older-adults",))
    login(client, "other")
    assert client.get("/costs/bph/").status_code == 403
    assert client.get(f"/costs/bph/{cohort[0].person.pseudonym}").status_code == 403
