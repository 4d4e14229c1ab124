"""Script payloads stored as names, free-text answers, imported fields and user names render
inert on every page (patient review, clinician, pilot, management, admin): autoescaped, no
inline script, no event-handler attributes, no ``javascript:`` links."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import FORM_TOKEN_FIELD, csrf_token
from tests.support.crawl import crawl, parse_page, sample_urls
from tests.support.isolation import fresh_globals_per_request
from tests.support.world import ROLES, World, build_world
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    ClinicalMeasurement,
    CostCentre,
    CostItem,
    Procedure,
    ServiceExposure,
)

SCRIPT = '<script>alert("xss-1")</script>'
IMAGE = '"><img src=x onerror=alert("xss-2")>'
SVG = "'><svg onload=alert('xss-3')>"
LINK = 'javascript:alert("xss-4")'
TEMPLATE = "{{ 7*7 }}{% print(1) %}xss-5"
PAYLOADS = (SCRIPT, IMAGE, SVG, LINK, TEMPLATE)
# What must never appear in a page: the payloads' markup unescaped, or a template evaluated.
LIVE = (
    '<script>alert("xss-1")',
    "<img src=x onerror",
    "<svg onload",
    'href="javascript:alert',
    "49xss-5",
    "1xss-5",
)
# What shows that a payload did reach the page (escaped).
ESCAPED = ("&lt;script&gt;alert(", "&lt;img src=x onerror", "&lt;svg onload")


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def poisoned(app: Flask, make_user: Any, enrol_patient: Any, patient_link: Any) -> World:
    from tests.web.test_walking_skeleton import answer_pages

    world = build_world(
        app, make_user, enrol_patient, patient_link, first_name=SCRIPT, last_name=IMAGE
    )
    make_user(SVG[:60], "clinician").display_name = TEMPLATE
    db.session.commit()
    centre = db.session.scalar(select(CostCentre.code).order_by(CostCentre.code))
    for enrolment in world.enrolments:
        enrolment.unit = SVG
        enrolment.clinician_code = LINK[:40]
        db.session.add_all(
            [
                Procedure(
                    enrolment_id=enrolment.id,
                    procedure_type=SCRIPT[:40],
                    setting="operating_room",
                    performed_on=date.today(),
                    drg_code=LINK[:20],
                    unit=IMAGE,
                    surgeon_code=SVG[:40],
                ),
                CostItem(
                    enrolment_id=enrolment.id,
                    kind="direct",
                    amount_eur=100.0,
                    price_year=2025,
                    service_date=date.today(),
                    description=SCRIPT + IMAGE,
                    cost_centre_code=centre,
                ),
                ServiceExposure(
                    enrolment_id=enrolment.id,
                    service_type=SCRIPT[:40],
                    provider_sector="ngo",
                    provider_name=IMAGE + SVG,
                    started_on=date.today(),
                ),
                ClinicalMeasurement(
                    enrolment_id=enrolment.id,
                    measure_code="qmax",
                    value_num=12.5,
                    value_text=SVG[:40],
                    unit=SCRIPT[:20],
                    measured_on=date.today(),
                    correction_reason=SCRIPT + LINK,
                ),
            ]
        )
    db.session.commit()
    # Free text answered through the patient pages, then shown on the review page.
    text_answers = {"overall": "5", "improve": SCRIPT + IMAGE, "comments": SVG + TEMPLATE + LINK}
    answer_pages(app.test_client(), world.tokens["bph_m3"], text_answers)
    # A failed login leaves the typed "username" in the audit log.
    anonymous = app.test_client()
    anonymous.post(
        "/auth/login",
        data={
            "username": SCRIPT + IMAGE,
            "password": "x",
            "csrf_token": csrf_token(anonymous, "/auth/login"),
        },
    )
    return world


def test_payloads_render_inert_everywhere(poisoned: World) -> None:
    starts = sample_urls(poisoned.app, poisoned.values)
    seen_escaped: set[str] = set()
    problems: list[str] = []
    visited = 0
    for role in (None, *ROLES):
        client = poisoned.client(role)
        if role is None:
            role_starts = [f"/r/{poisoned.tokens['bph_m3']}/review", *poisoned.patient_paths()]
        else:
            role_starts = [*starts, "/admin/audit", "/admin/users"]
        for url, response, parsed in crawl(client, role_starts, per_endpoint=2):
            if parsed is None:
                continue
            visited += 1
            html = response.get_data(as_text=True)
            problems.extend(f"{role} {url}: {live!r} unescaped" for live in LIVE if live in html)
            problems.extend(f"{role} {url}: {p}" for p in parsed.inline_problems)
            seen_escaped.update(marker for marker in ESCAPED if marker in html)
            assert response.status_code < 500, f"{role} {url}"
    assert visited > 20
    assert problems == []
    # The payloads did reach the pages (so the check above could have failed).
    assert seen_escaped == set(ESCAPED)


def test_review_page_shows_free_text_escaped(poisoned: World) -> None:
    client = poisoned.client(None)
    html = client.get(f"/r/{poisoned.tokens['bph_m3']}/review").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;xss-1&#34;)&lt;/script&gt;" in html or (
        "&lt;script&gt;alert(&quot;xss-1&quot;)&lt;/script&gt;" in html
    )
    assert "{{ 7*7 }}" in html  # shown as typed, not evaluated
    assert not parse_page("review", html).inline_problems


def test_names_are_escaped_on_the_clinician_pages(poisoned: World) -> None:
    client = poisoned.client("clinician")
    listing = client.get("/clinician/bph/").get_data(as_text=True)
    assert "&lt;script&gt;" in listing
    assert SCRIPT not in listing
    pseudonym = poisoned.enrolments[1].person.pseudonym
    page = client.get(f"/clinician/bph/{pseudonym}").get_data(as_text=True)
    assert "&lt;script&gt;" in page
    assert SCRIPT not in page and IMAGE not in page


def test_a_patient_form_token_is_not_reflected_raw(poisoned: World) -> None:
    """An attacker-chosen ``form_token`` or item value posted back is never echoed unescaped."""
    client = poisoned.client(None)
    token = poisoned.tokens["bph_baseline"]
    page = client.get(f"/r/{token}/1").get_data(as_text=True)
    form_token = FORM_TOKEN_FIELD.search(page)
    assert form_token
    response = client.post(
        f"/r/{token}/1",
        data={"form_token": form_token.group(1), "ipss1": SCRIPT, "direction": "next"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert SCRIPT not in html
    assert not parse_page("step", html).inline_problems
