"""Management: key figures on the page, the management summary PDF in Finnish, Swedish and
English (text extracted with pdftotext), small cells hidden, and no way to a person's data.

Only the tests that read a PDF's text need poppler-utils (``scripts/test`` installs it); they
fail when it is missing, unless ``VAIKUTTAVUUS_ALLOW_MISSING_TOOLS`` is set for a local run.
"""

from __future__ import annotations

import os
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


def require_pdf_tools() -> None:
    """Fail (CI installs poppler-utils) or, when the developer allows it, skip."""
    missing = [tool for tool in ("pdftotext", "pdfinfo") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not found: install poppler-utils (scripts/test does)"
    if os.environ.get("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS"):
        pytest.skip(message)
    pytest.fail(message)


def pdf_text(data: bytes, tmp_path: Path) -> tuple[str, int]:
    require_pdf_tools()
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


def test_a_missing_pdf_tool_fails_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS", raising=False)
    with pytest.raises(pytest.fail.Exception, match="poppler-utils"):
        require_pdf_tools()
    monkeypatch.setenv("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS", "1")
    with pytest.raises(pytest.skip.Exception):
        require_pdf_tools()


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


@pytest.mark.one_backend
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


def test_the_older_adults_summary_shows_the_primary_question_of_the_services(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The primary question's adjusted differences by service with the caveat that services
    were not randomised and the number of secondary comparisons; no provider sectors and no
    "effect" anywhere."""
    response = boss.get("/management/older-adults/summary.pdf?lang_pdf=en")
    assert response.status_code == 200
    text, _pages = pdf_text(response.data, tmp_path)
    wanted = expected(cohort_app, "older-adults", "en")
    analysis = wanted["analysis"]
    section = analysis.services(analysis.primary_service_score, "service_type")
    with cohort_app.test_request_context(), force_locale("en"):
        labels = Labels(analysis, "en")
        names = [labels.score("ucla3.total")]
        services = [labels.category("friend_service"), labels.category("home_care")]
        caveat = "Services were not randomised."
        secondary = f"{section.n_secondary} secondary comparisons"
    for name in [*names, *services, caveat, secondary]:
        assert normalise(name) in text, name
    assert "Provider sector" not in text
    assert not re.search(r"\beffects?\b", text, flags=re.IGNORECASE)
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


# -- every number of the page and the PDF: against the analytics ---------------------------
# (the expected figures are worked out in tests/web/report_numbers.py from the analytics'
# published tables and formatted there, not with the report's own helpers)


def _key_figures_on_page(html: str) -> list[tuple[str, str]]:
    from html import unescape

    facts = html.split('<dl class="facts">', 1)[1].split("</dl>", 1)[0]
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", facts, flags=re.S)

    def plain(fragment: str) -> str:
        return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", "", fragment))).strip()

    return [(plain(label), plain(value)) for label, value in pairs]


def _leads(html: str) -> list[str]:
    from html import unescape

    return [
        re.sub(r"[ \t\r\n]+", " ", unescape(p)).strip()
        for p in re.findall(r'<p class="lead">(.*?)</p>', html, flags=re.S)
    ]


@pytest.mark.parametrize("pilot_code", ["bph", "older-adults"])
def test_the_page_shows_the_analytics_key_figures_sentence_and_outcome_table(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    pilot_code: str,
) -> None:
    """Every key figure (label and value with its detail), the interpretation (BPH) or the
    service highlight (older adults) and every cell of the outcome figure's table are the
    analytics' numbers, for all index dates and (BPH) for a period, which changes them."""
    from tests.web import report_numbers as rn

    pilot = queries.pilot_by_code(db.session, pilot_code)
    assert pilot is not None
    dates = CohortAnalysis(db.session, pilot).roster["index_date"].sort_values()
    start, end = dates.iloc[len(dates) // 4].date(), dates.iloc[-1].date()
    seen = []
    variants = [("", Filters()), (f"&from={start}&to={end}", Filters(period=(start, end)))]
    for query, filters in variants if pilot_code == "bph" else variants[:1]:
        response = boss.get(f"/management/?pilot={pilot_code}{query}")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        result = CohortAnalysis(db.session, pilot, filters)
        with rn.in_language(cohort_app, "fi"):
            figures = rn.key_figures_expected(result, "fi")
            sentence = (
                rn.interpretation_expected(result, "fi")
                if pilot_code == "bph"
                else rn.service_highlight_expected(result, "fi")
            )
            outcomes = rn.expected_section(result, "outcomes")
        wanted = [
            (label, f"{value} ({detail})" if detail else value) for label, value, detail in figures
        ]
        assert _key_figures_on_page(html) == wanted
        assert sentence is not None and _leads(html) == [sentence]
        primary = outcomes.tables[0]
        assert primary[2] == f"outcomes {result.primary_score}"
        (table,) = rn.read_page(html).tables  # the figure's table, without a CSV link
        assert table.csv is None
        rn.assert_rows(table.rows, primary[1], f"management page {query}: outcome table")
        seen.append((wanted, sentence, primary[1]))
    if pilot_code == "bph":
        assert seen[0][0] != seen[1][0]  # the period changed the figures


def _pdf_tables(result: CohortAnalysis, language: str) -> list[tuple[str, list[Any]]]:
    """The tables of the management summary, in the order of reports/management.html."""
    from tests.web import report_numbers as rn

    def section(name: str, **options: Any) -> dict[str, list[Any]]:
        wanted = rn.expected_section(result, name, language=language, **options)
        return {what: rows for _how, rows, what in wanted.tables}

    tables: list[tuple[str, list[Any]]] = []
    tables += list(section("outcomes").items())
    costs = section("costs")
    tables += [(name, costs[name]) for name in ("costs", "costs_by_cost_centre")]
    if result.has_procedures:
        cea = section("cea", effect="qaly" if result.has_utility else "improvement")
        names = ("cea_summary", "ce_plane", "ceac", "inmb", "incremental")
        tables += [(name, cea[name]) for name in names if name in cea]
    if result.has_services:  # the primary question only
        services = section("services", score=result.primary_service_score)
        for name in ("service_differences service_type primary", "service_cost_per_point"):
            key = name if name in services else f"{name} service_type"
            tables.append((name, services[key]))
    overview, quality = section("overview"), section("quality")
    tables += [(name, overview[name]) for name in ("enrolment", "response_rates")]
    tables += [(name, quality[name]) for name in ("data_quality", "late_answers", "imports")]
    return tables


_PDFS: dict[tuple[str, str, str], bytes] = {}


def _summary_pdf(boss: FlaskClient, pilot_code: str, language: str) -> bytes:
    """The summary PDF of the enriched data set, rendered once per backend, pilot and
    language in this module: every test that reads it works on a fresh copy of the same data."""
    require_pdf_tools()
    key = (db.engine.dialect.name, pilot_code, language)
    if key not in _PDFS:
        response = boss.get(f"/management/{pilot_code}/summary.pdf?lang_pdf={language}")
        assert response.status_code == 200
        assert response.data.startswith(b"%PDF-")
        _PDFS[key] = response.data
    return _PDFS[key]


def _summary_text(boss: FlaskClient, tmp_path: Path, pilot_code: str, language: str) -> str:
    """The summary PDF's text (``report_numbers.pdf_text``)."""
    from tests.web import report_numbers as rn

    return rn.pdf_text(_summary_pdf(boss, pilot_code, language), tmp_path)


@pytest.mark.parametrize(("pilot_code", "language"), [("bph", "fi"), ("older-adults", "fi")])
def test_the_summary_pdf_shows_every_table_of_the_analytics(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
    pilot_code: str,
    language: str,
) -> None:
    """The key figures, the sentence and every row of every table of the summary (outcomes
    with their intervals, QALYs, costs by arm and cost centre, the ICER table, the CE plane in
    numbers, the CEAC, INMB unadjusted and adjusted, the procedure types; for older adults the
    service-effect and cost-per-point tables of loneliness and insecurity; the appendix's
    enrolment, response rates and data quality), in the PDF's text, in order."""
    from tests.web import report_numbers as rn

    rn.enrich()
    text = _summary_text(boss, tmp_path, pilot_code, language)
    pilot = queries.pilot_by_code(db.session, pilot_code)
    assert pilot is not None
    result = CohortAnalysis(db.session, pilot)
    with rn.in_language(cohort_app, language):
        figures = rn.key_figures_expected(result, language)
        sentence = (
            rn.interpretation_expected(result, language)
            if pilot_code == "bph"
            else rn.service_highlight_expected(result, language)
        )
        tables = _pdf_tables(result, language)
    assert sentence is not None
    shown = [[c for c in (value, label, detail) if c] for label, value, detail in figures]
    position = rn.assert_tables_in_pdf(text, [("key figures", shown)])
    position = rn.assert_tables_in_pdf(text, [("sentence", [[sentence]])], position)
    assert sum(len(rows) for _name, rows in tables) > 40
    rn.assert_tables_in_pdf(text, tables, position)


A4_WIDTH_PT = 595.28
RIGHT_MARGIN_PT = 16 / 25.4 * 72
"""reports/report.css: @page margin 18mm 16mm 20mm 16mm."""


@pytest.mark.one_backend
@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_every_word_of_the_summary_is_inside_the_text_area(
    boss: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    tmp_path: Path,
    language: str,
) -> None:
    """No table is wider than the page: long Finnish and Swedish words in headers and cells
    break (soft hyphens, syllables) instead of pushing the last column over the margin."""
    from tests.web import report_numbers as rn

    rn.enrich()
    words = rn.pdf_word_boxes(_summary_pdf(boss, "bph", language), tmp_path)
    assert len(words) > 500
    edge = A4_WIDTH_PT - RIGHT_MARGIN_PT + 1.0
    outside = sorted({word for _x0, x1, word in words if x1 > edge})
    assert outside == [], f"words past the right margin ({edge:.0f} pt): {outside}"
