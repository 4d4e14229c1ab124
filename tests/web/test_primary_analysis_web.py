"""The declared primary analysis on the pilot page: the adjusted headline leads, the unadjusted
comparison stands beside it labelled as such, every table has its CSV with the analysis'
numbers, probabilities are never 0 % or 100 %, and the methods appendix (CHEERS 2022) has a
text for every item in every language."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
from flask import Flask
from flask_babel import force_locale

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus import queries
from vaikuttavuus.extensions import db
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.methods import CHEERS_TOPICS, cheers_items
from vaikuttavuus.services.primary_view import primary_sentence
from vaikuttavuus.services.users import create_user


def _lead(app: Flask):  # type: ignore[no-untyped-def]
    fresh_globals_per_request(app)
    create_user(
        db.session,
        username="vastuu",
        password=PASSWORD,
        role="pilot_lead",
        pilot_codes=("bph", "older-adults"),
        locale="en",
    )
    db.session.commit()
    client = app.test_client()
    assert login(client, "vastuu").status_code == 302
    return client


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).replace("\xa0", " ")


def test_the_adjusted_answer_leads_the_cost_effectiveness_section(cohort_app: Flask) -> None:  # noqa: F811
    client = _lead(cohort_app)
    html = client.get("/pilot/bph/?section=cea&lang=en").get_data(as_text=True)
    page = _text(html)
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    analysis = CohortAnalysis(db.session, pilot)
    with cohort_app.test_request_context(), force_locale("en"):
        sentence = primary_sentence(analysis, Labels(analysis, "en"))
    assert sentence is not None and "not randomised" in sentence
    headline = page.index("The answer of the declared primary analysis (adjusted)")
    assert _text(sentence) in page
    # the adjusted answer comes before the unadjusted comparisons, which say what they are
    assert headline < page.index("Unadjusted comparisons of the persons with complete data")
    assert "Adjusted, primary (95% CI)" in page and "Unadjusted (95% CI)" in page
    assert "100 %" not in page and "100%" not in page
    for name in ("primary_estimates", "primary_inmb", "primary_missing", "primary_sensitivity"):
        assert f"/pilot/bph/tables/{name}.csv" in html


def test_primary_csv_has_the_analysis_numbers(cohort_app: Flask) -> None:  # noqa: F811
    client = _lead(cohort_app)
    response = client.get("/pilot/bph/tables/primary_estimates.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    result = CohortAnalysis(db.session, pilot).primary
    assert result is not None and result.available
    by_measure = {row["measure"]: row for row in rows}
    for measure in ("improvement", "cost", "qaly"):
        pair = result.differences[measure]
        assert float(by_measure[measure]["adjusted"]) == pytest.approx(pair.adjusted.estimate)
        assert float(by_measure[measure]["unadjusted"]) == pytest.approx(pair.unadjusted.estimate)
        assert int(by_measure[measure]["adjusted_n"]) == pair.adjusted.n
    probability = float(by_measure["inmb_improvement"]["probability_adjusted"])
    assert 0 < probability < 1
    missing = client.get("/pilot/bph/tables/primary_missing.csv").get_data(as_text=True)
    assert "ipss.total@m12,operating_room," in missing


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_every_cheers_item_has_a_text(cohort_app: Flask, language: str) -> None:  # noqa: F811
    for code in ("bph", "older-adults"):
        pilot = queries.pilot_by_code(db.session, code)
        assert pilot is not None
        analysis = CohortAnalysis(db.session, pilot, n_boot=200, imputations=3)
        with cohort_app.test_request_context(), force_locale(language):
            items = cheers_items(analysis, Labels(analysis, language))
        assert [item.number for item in items] == list(CHEERS_TOPICS)
        for item in items:
            assert item.topic.strip(), item
            assert len(item.text.strip()) > 20, item
            assert "%(" not in item.text and "{" not in item.text, item
        funding = items[26].text
        assert "NextGenerationEU" in funding


def test_methods_section_and_csv(cohort_app: Flask) -> None:  # noqa: F811
    client = _lead(cohort_app)
    page = _text(client.get("/pilot/bph/?section=methods&lang=en").get_data(as_text=True))
    assert "Methods (CHEERS 2022)" in page
    for topic in ("Perspective", "Time horizon", "Valuation of outcomes", "Source of funding"):
        assert topic in page
    assert "England" in page  # the EQ-5D-5L value set is named
    response = client.get("/pilot/bph/tables/methods.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [int(row["item"]) for row in rows] == list(CHEERS_TOPICS)
