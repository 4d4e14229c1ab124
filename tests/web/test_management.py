"""Management: key figures on the page, the management summary PDF in Finnish, Swedish and
English (text extracted with pdftotext), small cells hidden, and no way to a person's data."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from sqlalchemy import select

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus import queries
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Person, Role
from vaikuttavuus.security.access import PUBLIC, declared_access
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.management_report import interpretation, key_figures
from vaikuttavuus.services.users import create_user

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


@pytest.fixture
def boss(cohort_app: Flask) -> Iterator[FlaskClient]:  # noqa: F811
    fresh_globals_per_request(cohort_app)
    create_user(db.session, username="johtaja", password=PASSWORD, role="management")
    db.session.commit()
    client = cohort_app.test_client()
    assert login(client, "johtaja").status_code == 302
    yield client


def normalise(text: str) -> str:
    """One line, single spaces, no hyphens (pdftotext breaks lines and drops the hyphen of a
    word broken at it; numbers use no-break spaces)."""
    text = text.replace("\xa0", " ").replace("\u202f", " ").replace("-", "")
    return re.sub(r"\s+", " ", text).strip()


def pdf_text(data: bytes, tmp_path: Path) -> tuple[str, int]:
    path = tmp_path / "summary.pdf"
    path.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    return normalise(text), pages


def expected(
    app: Flask, code: str, language: str, filters: Filters | None = None
) -> dict[str, Any]:
    pilot = queries.pilot_by_code(db.session, code)
    assert pilot is not None
    analysis = CohortAnalysis(db.session, pilot, filters)
    with app.test_request_context(), force_locale(language):
        labels = Labels(analysis, language)
        return {
            "figures": key_figures(analysis, labels),
            "sentence": interpretation(analysis, labels),
            "name": labels.pilot,
            "analysis": analysis,
        }


def test_the_page_shows_key_figures_and_the_interpretation(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
) -> None:
    response = boss.get("/management/?pilot=bph")
    assert response.status_code == 200
    html = normalise(response.get_data(as_text=True).replace("&lt;", "<"))
    wanted = expected(cohort_app, "bph", "fi")
    assert wanted["sentence"] and normalise(wanted["sentence"]) in html
    assert len(wanted["figures"]) >= 5
    for figure in wanted["figures"]:
        assert normalise(figure.value) in html
    assert 'href="/management/bph/summary.pdf?lang_pdf=fi"' in response.get_data(as_text=True)
    older = boss.get("/management/?pilot=older-adults&lang_pdf=sv")
    assert older.status_code == 200
    assert "/management/older-adults/summary.pdf?lang_pdf=sv" in older.get_data(as_text=True)
    assert "/pilot/" not in older.get_data(as_text=True)  # no links to the pilot pages or CSVs


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_the_summary_pdf_in_each_language(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
    language: str,
) -> None:
    before = db.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()))
    response = boss.get(f"/management/bph/summary.pdf?lang_pdf={language}")
    assert response.status_code == 200
    assert response.data.startswith(b"%PDF-")
    assert "attachment" in response.headers["Content-Disposition"]
    text, pages = pdf_text(response.data, tmp_path)
    assert 4 <= pages <= 14
    wanted = expected(cohort_app, "bph", language)
    assert wanted["name"] in text
    assert normalise(wanted["sentence"]) in text
    for figure in wanted["figures"]:
        assert normalise(figure.value) in text, figure
    ce = wanted["analysis"].cost_effectiveness
    with cohort_app.test_request_context(), force_locale(language):
        from flask_babel import gettext

        plane = gettext(
            "Cost-effectiveness plane: %(effect)s",
            effect=Labels(wanted["analysis"], language).effect("qaly"),
        )
        ceac = gettext(
            "Cost-effectiveness acceptability curve: %(effect)s",
            effect=Labels(wanted["analysis"], language).effect("qaly"),
        )
    assert ce.effects["qaly"].available
    assert normalise(plane) in text and normalise(ceac) in text  # the figures' captions
    images = subprocess.run(
        ["pdfimages", "-list", str(tmp_path / "summary.pdf")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len(images.strip().splitlines()) >= 3  # the CE-plane cloud is drawn as an image
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.id > (before or 0))).all()
    assert [e.action for e in events] == ["export_pdf"]
    assert events[0].details["language"] == language


def test_the_older_adults_summary_shows_loneliness_and_insecurity_by_service(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
) -> None:
    response = boss.get("/management/older-adults/summary.pdf?lang_pdf=fi")
    assert response.status_code == 200
    text, _pages = pdf_text(response.data, tmp_path)
    wanted = expected(cohort_app, "older-adults", "fi")
    analysis = wanted["analysis"]
    with cohort_app.test_request_context(), force_locale("fi"):
        labels = Labels(analysis, "fi")
        names = [labels.score("ucla3.total"), labels.score("insecurity.safe_daily")]
        services = [labels.category("friend_service"), labels.category("home_care")]
    for name in [*names, *services]:
        assert normalise(name) in text
    assert wanted["sentence"] is None
    for figure in wanted["figures"]:
        assert normalise(figure.value) in text


def test_small_cells_are_hidden_in_the_summary(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
) -> None:
    people = queries.enrolment_overview(db.session, queries.pilot_by_code(db.session, "bph").id)  # type: ignore[union-attr]
    people["index_date"] = pd.to_datetime(people["index_date"])
    ordered = people.sort_values("index_date")
    clinic = ordered[ordered["arm"] == "outpatient_clinic"]
    end = clinic["index_date"].iloc[1].date()  # two outpatient-clinic patients
    first = ordered["index_date"].iloc[0].date()
    small = ordered[ordered["index_date"] <= pd.Timestamp(end)]
    counts = small["arm"].value_counts()
    assert 1 <= counts["outpatient_clinic"] <= 4
    response = boss.get(f"/management/bph/summary.pdf?lang_pdf=en&from={first}&to={end}")
    assert response.status_code == 200
    text, _pages = pdf_text(response.data, tmp_path)
    assert "Outpatient clinic <5" in text
    assert f"Outpatient clinic {counts['outpatient_clinic']}," not in text
    wanted = expected(cohort_app, "bph", "en", Filters(period=(first, end)))
    assert wanted["sentence"] == "There are too few persons with complete data to compare the arms."


def test_management_never_reaches_a_persons_data(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
) -> None:
    person = db.session.scalars(select(Person)).first()
    assert person is not None
    markers = [
        m
        for row in db.session.execute(select(Person.pseudonym, Person.last_name))
        for m in row
        if m
    ]
    values = {"pilot_code": "bph", "pseudonym": person.pseudonym, "token": "x" * 32, "number": 1}
    problems = []
    for rule in cohort_app.url_map.iter_rules():
        if rule.endpoint == "static" or "GET" not in (rule.methods or set()):
            continue
        access = declared_access(cohort_app, rule.endpoint)
        if access == PUBLIC:
            continue
        arguments = {name: values.get(name, "1") for name in rule.arguments}
        built = rule.build(arguments, append_unknown=False)
        assert built is not None
        url = built[1]
        if url.endswith(".pdf") and access is not None and Role.MANAGEMENT in access:
            continue  # the summary PDFs: checked above, aggregates only
        response = boss.get(url)
        if access is not None and Role.MANAGEMENT in access:
            html = response.get_data(as_text=True)
            leaked = [m for m in markers if m in html]
            if leaked:
                problems.append(f"{url} shows {leaked[:3]}")
        elif response.status_code != 403:
            problems.append(f"{url}: {response.status_code}")
    assert problems == []


def test_unknown_language_falls_back_to_finnish(boss: FlaskClient) -> None:
    response = boss.get("/management/bph/summary.pdf?lang_pdf=de")
    assert response.status_code == 200
    assert "-fi-" in response.headers["Content-Disposition"]
    assert date.today().isoformat() in response.headers["Content-Disposition"]
