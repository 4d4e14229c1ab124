"""Older adults: the services analysis for ``report estimates``, the client-guidance view and
the client's services on the clinician's page."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select

from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.web.test_cohort_pages import analysis, fi, page, user_client
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Enrolment, Person, Pilot, ServiceExposure
from vaikuttavuus.services.definitions import pilot_spec

CONTRACT_KEYS = {
    "service_type", "outcome", "time_point", "estimate", "ci95", "p", "p_adjusted", "e_value",
    "n_exposed", "n_unexposed", "primary", "reason",
}  # fmt: skip


def test_service_estimates_follow_the_report_contract(cohort_app: Flask) -> None:  # noqa: F811
    result = analysis("older-adults")
    entries = result.service_estimates()
    spec = pilot_spec(result.pilot)
    outcomes = ["ucla3.total", "djg6.total", "lonely1.frequency", "insecurity.safe_daily"]
    assert len(entries) == len(spec.service_types) * len(outcomes)
    assert {(e["service_type"], e["outcome"]) for e in entries} == {
        (s.id, o) for s in spec.service_types for o in outcomes
    }
    for entry in entries:
        assert set(entry) == CONTRACT_KEYS
        assert entry["time_point"] == "m12"
        assert entry["primary"] is (entry["outcome"] == "ucla3.total")
        if entry["estimate"] is None:
            assert entry["reason"] in {"small_cell", "no_overlap", "not_estimable"}
            continue
        low, high = entry["ci95"]
        assert low < entry["estimate"] < high and entry["reason"] is None
        assert entry["p_adjusted"] >= entry["p"] and entry["e_value"] >= 1
        assert min(entry["n_exposed"], entry["n_unexposed"]) >= spec.min_cell_size
    assert any(e["estimate"] is not None for e in entries if e["primary"])
    json.dumps(entries, allow_nan=False)
    sensitivity = result.service_sensitivity()
    assert {s["analysis"] for s in sensitivity} >= {"outcome_regression", "ipw", "mnar_exposed"}
    assert all(s["outcome"] == "ucla3.total" for s in sensitivity)
    json.dumps(sensitivity, allow_nan=False)
    with cohort_app.test_request_context(), force_locale("en"):
        caveats = result.service_caveats()
    assert caveats[0].startswith("Services were not randomised.")
    assert any("secondary" in c and "Holm" in c for c in caveats)
    assert analysis("bph").service_estimates() == []


def _older_adult_with_services() -> tuple[str, int]:
    row = db.session.execute(
        select(Person.pseudonym, Enrolment.id)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .join(ServiceExposure, ServiceExposure.enrolment_id == Enrolment.id)
        .where(Pilot.code == "older-adults")
        .order_by(Enrolment.id)
        .limit(1)
    ).one()
    return str(row[0]), int(row[1])


def test_the_client_guidance_view_for_a_profile_and_for_a_client(
    cohort_app: Flask,  # noqa: F811
) -> None:
    clinician = user_client(cohort_app, "hoitaja", "clinician")
    html = page(clinician, "/guidance/older-adults/?band=above&lives_alone=yes&age_band=x")
    assert fi(cohort_app, "Client guidance") in html
    assert re.search(r'<option value="above" selected>', html)
    assert re.search(r'<select id="age_band" name="age_band"><option value="">', html)
    result = analysis("older-adults")
    table = result.guidance({"band": "above", "lives_alone": "yes", "insecure": None,
                             "age_band": None})  # fmt: skip
    assert not isinstance(table, str)
    monthly = table["monthly_cost"].to_numpy()
    assert list(monthly) == sorted(monthly)  # lighter services first
    hidden = table["hidden"].to_numpy(dtype=bool)
    # a small cell hides the estimate and both counts (neither can be worked out)
    assert table.loc[hidden, ["n_exposed", "n_unexposed", "estimate"]].isna().all().all()
    names = {c.id: c.name.get("fi") for c in result.spec.service_types}
    body = html.split('<table class="data">', 1)[1]
    positions = [body.find(f">{names[code]}<") for code in table["category"]]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    pseudonym, enrolment_id = _older_adult_with_services()
    client_html = page(clinician, f"/guidance/older-adults/client/{pseudonym}")
    from vaikuttavuus.services.guidance import client_profile_of

    own = client_profile_of(result, enrolment_id)
    for dimension, value in own.items():
        if value is not None:
            assert f'<option value="{value}" selected>' in client_html, dimension
    event = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "view_client_guidance")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None and event.person_id is not None
    assert clinician.get("/guidance/older-adults/client/P-NOBODY").status_code == 404
    no_services = page(clinician, "/guidance/bph/")
    assert fi(cohort_app, "This pilot has no services to compare.") in no_services


def test_client_guidance_is_for_clinicians_and_pilot_leads_of_the_pilot(
    cohort_app: Flask,  # noqa: F811
) -> None:
    boss = user_client(cohort_app, "johtaja", "management")
    assert boss.get("/guidance/older-adults/").status_code == 403
    lead = user_client(cohort_app, "vastaava", "pilot_lead")
    assert lead.get("/guidance/older-adults/").status_code == 200


def test_the_clients_page_shows_the_services_over_time(cohort_app: Flask) -> None:  # noqa: F811
    clinician = user_client(cohort_app, "hoitaja", "clinician")
    pseudonym, enrolment_id = _older_adult_with_services()
    html = page(clinician, f"/clinician/older-adults/{pseudonym}")
    assert fi(cohort_app, "Services over time") in html
    episodes = db.session.scalars(
        select(ServiceExposure).where(ServiceExposure.enrolment_id == enrolment_id)
    ).all()
    assert len(re.findall(r'<tr data-service="', html)) == len(episodes)
    assert f"/guidance/older-adults/client/{pseudonym}" in html
    # no clinical measures or procedures in this pilot: their boxes are left out
    assert 'id="measures-title"' not in html and 'id="procedures-title"' not in html
    alt = re.search(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]+)" class="chart">'
                    r'</figure>\s*\n\s*<div class="table-wrap">\s*<table class="data">\s*'
                    r"<caption>" + re.escape(fi(cohort_app, "Services the client has received")),
                    html)  # fmt: skip
    assert alt is not None
    first = episodes[0]
    assert first.started_on.isoformat() in unescape(alt.group(1))
    bph_person = db.session.scalar(
        select(Person.pseudonym)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .where(Pilot.code == "bph")
        .limit(1)
    )
    bph = page(clinician, f"/clinician/bph/{bph_person}")
    assert 'id="measures-title"' in bph and 'id="procedures-title"' in bph
    assert 'id="services-title"' not in bph


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_no_page_or_csv_of_the_services_speaks_of_effects(
    cohort_app: Flask,  # noqa: F811
    language: str,
) -> None:
    """The services section, its CSV headers and the guidance view never say "effect"."""
    lead = user_client(cohort_app, f"vastaava_{language}", "pilot_lead")
    words = {"fi": r"vaikutu|vaikuttaa", "sv": r"effekt", "en": r"\beffects?\b"}[language]
    html = page(lead, f"/pilot/older-adults/?section=services&lang={language}")
    body = html.split("<main", 1)[1]
    assert not re.search(words, body, flags=re.IGNORECASE), re.findall(
        r".{60}(?:" + words + r").{60}", body, flags=re.IGNORECASE
    )[:3]
    guidance = page(lead, f"/guidance/older-adults/?lang={language}").split("<main", 1)[1]
    assert not re.search(words, guidance, flags=re.IGNORECASE)
    csv = lead.get("/pilot/older-adults/tables/service_differences.csv?score=ucla3.total")
    header = csv.get_data(as_text=True).splitlines()[0]
    assert "effect" not in header
