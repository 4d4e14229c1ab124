"""Management: the two-page summary per pilot and grid period on the page, as a PDF in
Finnish, Swedish and English and in the board pack; the download follows the form; small cells
hidden; no way to a person's data.

The demo-sized synthetic data set (enough persons per quarter for a year's primary analysis);
each PDF is rendered once per backend, pilot and language and shared by the tests that read it.
Only the tests that read a PDF need poppler-utils (``scripts/test`` installs it); they fail
when it is missing, unless ``VAIKUTTAVUUS_ALLOW_MISSING_TOOLS`` is set for a local run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import (  # noqa: F401
    TODAY,
    management_app,
    management_template,
)
from tests.support.isolation import fresh_globals_per_request
from tests.support.pdf_structure import assert_accessible
from tests.web import report_numbers as rn
from vaikuttavuus import queries
from vaikuttavuus.domain.periods import (
    GridPeriod,
    block_release,
    default_period,
    release_date,
    released_periods,
)
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Arm, AuditEvent, Enrolment, Person, Pilot, Role
from vaikuttavuus.security.access import PUBLIC, declared_access
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.management_report import (
    ReleasedCohort,
    primary_allowed,
    primary_counts,
    released_cohort,
    service_rows,
)
from vaikuttavuus.services.users import create_user

PILOTS = ("bph", "older-adults")
LANGUAGES = ("fi", "sv", "en")


@pytest.fixture
def boss(management_app: Flask) -> Iterator[FlaskClient]:  # noqa: F811
    fresh_globals_per_request(management_app)
    create_user(db.session, username="johtaja", password=PASSWORD, role="management")
    db.session.commit()
    client = management_app.test_client()
    assert login(client, "johtaja").status_code == 302
    yield client


def require_pdf_tools() -> None:
    """Fail (CI installs poppler-utils) or, when the developer allows it, skip."""
    missing = [tool for tool in ("pdftotext", "pdfinfo") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not found: install poppler-utils (scripts/test does)"
    if os.environ.get("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS"):
        pytest.skip(message)
    pytest.fail(message)


def pdf_info(data: bytes, folder: Path) -> dict[str, str]:
    require_pdf_tools()
    path = folder / "info.pdf"
    path.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True)
    lines = (line.partition(":") for line in info.stdout.splitlines())
    return {key.strip(): value.strip() for key, _sep, value in lines}


def the_release() -> tuple[Any, GridPeriod]:
    release = release_date(TODAY)
    pilots = db.session.scalars(select(Pilot.id)).all()
    period = default_period(released_periods(queries.first_index_date(db.session, pilots), release))
    assert period is not None and period.kind == "Y"
    return release, period


def cohort_of(code: str, period: GridPeriod | None = None) -> ReleasedCohort:
    release, _year = the_release()
    pilot = queries.pilot_by_code(db.session, code)
    assert pilot is not None
    return released_cohort(db.session, pilot, period or answered_period(code), release)


_ANSWERED: dict[str, GridPeriod] = {}


def answered_period(code: str) -> GridPeriod:
    """The newest released year or half-year whose answer is shown: every quarter has none or
    at least five persons in each compared group (the synthetic 12-month follow-up answers of
    a quarter's outpatient clinic patients are sometimes fewer)."""
    if code not in _ANSWERED:
        release, _year = the_release()
        pilot = queries.pilot_by_code(db.session, code)
        assert pilot is not None
        periods = released_periods(queries.first_index_date(db.session, [pilot.id]), release)
        for period in sorted((p for p in periods if p.kind in "YH"), reverse=True):
            cohort = released_cohort(db.session, pilot, period, release)
            if code == "bph":
                if primary_allowed(cohort) and primary_counts(cohort.analysis)["outcome"].sum():
                    break
            else:
                with current_app.test_request_context():
                    if any(r.estimate is not None for r in service_rows(cohort)[0]):
                        break
        else:
            pytest.fail(f"no released period of {code} shows the answer")
        _ANSWERED[code] = period
    return _ANSWERED[code]


_PDFS: dict[tuple[str, str, str], bytes] = {}


def summary_pdf(boss: FlaskClient, pilot_code: str, language: str) -> bytes:
    """The summary PDF of :func:`answered_period`, rendered once per backend, pilot and
    language: every test that reads it works on a fresh copy of the same data."""
    key = (db.engine.dialect.name, pilot_code, language)
    if key not in _PDFS:
        period = answered_period(pilot_code).code
        response = boss.get(
            f"/management/{pilot_code}/summary.pdf?lang_pdf={language}&period={period}"
        )
        assert response.status_code == 200
        assert response.data.startswith(b"%PDF-")
        _PDFS[key] = response.data
    return _PDFS[key]


def test_a_missing_pdf_tool_fails_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS", raising=False)
    with pytest.raises(pytest.fail.Exception, match="poppler-utils"):
        require_pdf_tools()
    monkeypatch.setenv("VAIKUTTAVUUS_ALLOW_MISSING_TOOLS", "1")
    with pytest.raises(pytest.skip.Exception):
        require_pdf_tools()


# -- the page ----------------------------------------------------------------------------------


def _plain(fragment: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def _paragraphs(html: str, css: str) -> list[str]:
    return [_plain(p) for p in re.findall(rf'<p class="{css}">(.*?)</p>', html, flags=re.S)]


@pytest.mark.parametrize("pilot_code", PILOTS)
def test_the_page_answers_the_question_with_key_figures_trend_and_main_figure(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
    pilot_code: str,
) -> None:
    """Page 1 of the summary on the page: the declared question, the answer from the declared
    primary analysis (BPH: the adjusted sentence with its likelihood word and number; older
    adults: the services' adjusted differences), every cell of the key figures (with
    intervals and completeness; hidden where a quarter hides them) and of the quarterly trend;
    then the main figure's table."""
    period = answered_period(pilot_code)
    response = boss.get(f"/management/?pilot={pilot_code}&period={period.code}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    cohort = cohort_of(pilot_code)
    with rn.in_language(management_app, "fi"):
        figures = rn.management_key_figures_expected(cohort, "fi")
        trend = rn.management_trend_expected(cohort, "fi")
        sentence = (
            rn.interpretation_expected(cohort.analysis, "fi") if pilot_code == "bph" else None
        )
        question = cohort.analysis.spec.analysis.question.get("fi")
    assert question in _plain(html)
    leads = _paragraphs(html, "lead")
    assert len(leads) == 1
    if sentence is not None:
        assert leads == [sentence]
    else:
        # the declared primary question: the service with the largest reduction among those
        # whose Holm-adjusted p < 0.05, or that none stands out; the secondary comparisons
        with rn.in_language(management_app, "fi"):
            rows, secondary, error = service_rows(cohort)
            labels = Labels(cohort.analysis, "fi")
            fmt = rn.Formats("fi")
            score = labels.score(cohort.analysis.primary_service_score)
        shown = [r for r in rows if r.estimate is not None]
        assert error is None and shown
        clear = [
            r for r in shown if r.p_adjusted is not None and r.p_adjusted < 0.05 and r.estimate < 0
        ]  # type: ignore[operator]
        assert score in leads[0] and f"{secondary} " in leads[0]
        if clear:
            best = min(clear, key=lambda r: float(r.estimate))  # type: ignore[arg-type]
            assert labels.category(best.category) in leads[0]
            assert fmt.signed(best.estimate, 2) in leads[0]
        else:
            assert all(labels.category(r.category) not in leads[0] for r in shown)
    tables = rn.read_page(html).tables
    assert len(tables) == 3  # key figures, trend, the main figure's table
    rn.assert_rows(tables[0].rows, figures, "key figures")
    rn.assert_rows(tables[1].rows, trend, "quarterly trend")
    assert all(t.csv is None for t in tables)  # management gets no CSV
    assert "/pilot/" not in html


def test_the_download_follows_the_form(boss: FlaskClient, management_app: Flask) -> None:  # noqa: F811
    """The form's buttons submit the chosen pilot, period and language to the PDF endpoints
    (so the file matches the choices without "Show" and without JavaScript), and say what
    they will download; staff.js updates their labels when the choices change."""
    _release, year = the_release()
    half = GridPeriod(year.year, "H", 1)
    response = boss.get(f"/management/?pilot=older-adults&period={half.code}&lang_pdf=sv")
    html = response.get_data(as_text=True)
    form = html.split("<form", 2)[2].split("</form>", 1)[0]  # after the logout form
    assert 'method="get"' in form and "data-download-form" in form
    buttons = re.findall(r"<button([^>]*)>(.*?)</button>", form, flags=re.S)
    actions = {
        re.search(r'formaction="([^"]+)"', a).group(1): _plain(t)
        for a, t in buttons
        if "formaction" in a
    }  # type: ignore[union-attr]
    with rn.in_language(management_app, "fi"):
        name = queries.pilot_by_code(db.session, "older-adults").label("fi")  # type: ignore[union-attr]
        assert actions["/management/summary.pdf"] == rn.text(
            "Download PDF: %(pilot)s, %(period)s, %(language)s",
            pilot=name,
            period=half.label,
            language="svenska",
        )
        assert actions["/management/board-pack.pdf"] == rn.text(
            "Download the board pack (both pilots, PDF): %(period)s, %(language)s",
            period=half.label,
            language="svenska",
        )
    assert f'<option value="{half.code}" selected>' in form
    templates = re.findall(r'data-label-template="([^"]+)"', form)
    assert len(templates) == 2 and all("{period}" in unescape(t) for t in templates)
    static = Path(management_app.static_folder or "")
    staff_js = (static / "js" / "staff.js").read_text(encoding="utf-8")
    assert "data-label-template" in staff_js and "data-download-form" in staff_js
    # what the button submits, without JavaScript:
    download = boss.get(
        f"/management/summary.pdf?pilot=older-adults&period={half.code}&lang_pdf=sv"
    )
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    disposition = download.headers["Content-Disposition"]
    assert f"older-adults-management-summary-{half.code}-sv-" in disposition
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "export_pdf"
    assert event.details["period"] == half.code and event.details["language"] == "sv"


def _key_figure_labels(html: str) -> list[str]:
    return [row[0] for row in rn.read_page(html).tables[0].rows]


def test_the_key_figures_are_at_the_latest_due_follow_up_or_the_chosen_one(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
) -> None:
    """The newest released quarter's 12-month follow-up is not due yet: the key figures are at
    the latest follow-up that is (3 months, which has answers), not at one nobody could answer
    yet; management can choose the follow-up on the page (an unknown one is automatic) and
    the PDF follows the form."""
    release, year = the_release()
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    quarters = [p for p in released_periods(
        queries.first_index_date(db.session, [pilot.id]), release) if p.kind == "Q"]  # fmt: skip
    # the newest quarter whose 3-month follow-up is released but the 12-month one is not
    quarter = max(q for q in quarters if block_release(q.end, 120) <= release < block_release(
        q.end, 425))  # fmt: skip
    cohort = released_cohort(db.session, pilot, quarter, release)
    assert not cohort.is_due("m12") and cohort.is_due("m3")
    assert cohort.time_point == "m3"
    rates = cohort.analysis.response_rates.table.records()
    assert any(r["time_point"] == "m3" and (r["responded"] or 0) > 0 for r in rates)
    with rn.in_language(management_app, "fi"):
        m3, m12 = Labels(cohort.analysis, "fi").time_point("m3"), "12 kuukautta"
    labels = _key_figure_labels(boss.get(f"/management/?pilot=bph&period={quarter.code}").text)
    assert any(m3 in label for label in labels) and not any(m12 in label for label in labels)

    # the declared 12 months when it is due; 3 months when management chooses it
    assert released_cohort(db.session, pilot, year, release).time_point == "m12"
    page = boss.get(f"/management/?pilot=bph&period={year.code}&time_point=m3").text
    assert any(m3 in label for label in _key_figure_labels(page))
    assert '<option value="m3" selected>' in page
    unknown = boss.get(f"/management/?pilot=bph&period={year.code}&time_point=m99").text
    assert any(m12 in label for label in _key_figure_labels(unknown))
    download = boss.get(
        f"/management/summary.pdf?pilot=bph&period={year.code}&time_point=m3&lang_pdf=fi"
    )
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")


# -- the PDFs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_summary_is_at_most_two_tagged_pages_leading_with_the_answer(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
    tmp_path: Path,
    language: str,
) -> None:
    """Both pilots' summaries in each language: at most two A4 pages, tagged, the answer first,
    then every row of the key figures and of the trend, and the main figure's table on the
    second page; each download is audited once."""
    for code in PILOTS:
        data = summary_pdf(boss, code, language)
        info = pdf_info(data, tmp_path)
        assert int(info["Pages"]) <= 2, (code, language, info["Pages"])
        assert info["Tagged"] == "yes"
        structure = assert_accessible(data, language, tables=3, figures=1)
        assert structure.headings == [1, 2, 2, 2]  # pilot; answer; main figure; terms
        text = rn.pdf_text(data, tmp_path)
        cohort = cohort_of(code)
        with rn.in_language(management_app, language):
            question = cohort.analysis.spec.analysis.question.get(language)
            name = cohort.analysis.spec.name.get(language)
            figures = rn.management_key_figures_expected(cohort, language)
            trend = rn.management_trend_expected(cohort, language)
            sentence = (
                rn.interpretation_expected(cohort.analysis, language) if code == "bph" else None
            )
        assert info["Title"].startswith(name)
        position = rn.assert_tables_in_pdf(text, [("question", [[rn.flat(question)]])])
        if sentence is not None:
            position = rn.assert_tables_in_pdf(text, [("answer", [[sentence]])], position)
        rn.assert_tables_in_pdf(text, [("key figures", figures), ("trend", trend)], position)
        if code == "older-adults" and language == "en":
            # the services: associations with a caveat, never "effects"; no provider sectors
            assert "Services were not randomised." in text
            assert not re.search(r"\beffects?\b", text, flags=re.IGNORECASE)
            assert "Provider sector" not in text


def test_the_bph_page_two_explains_the_terms_with_the_same_numbers(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Page 2 (BPH): the adjusted acceptability curve with its table, and plain explanations of
    the ICER, the net monetary benefit and the probability of cost-effectiveness at the
    declared willingness to pay — the same effect, value and probability as the answer — with
    where that value comes from."""
    data = summary_pdf(boss, "bph", "en")
    text = rn.pdf_text(data, tmp_path)
    cohort = cohort_of("bph")
    result = cohort.analysis.primary
    assert result is not None and result.available
    declared = cohort.analysis.spec.willingness_to_pay("improvement")
    lam = float(declared.reference)
    probability = result.probability_at("improvement", lam)[0]
    with rn.in_language(management_app, "en"):
        fmt = rn.Formats("en")
        shown = fmt.probability(probability)
        assert rn.flat(declared.source.get("en")) in text
        for term in (
            "ICER (incremental cost-effectiveness ratio)",
            "INMB (incremental net monetary benefit)",
            "Probability of cost-effectiveness",
        ):
            assert term in text
        sentence = rn.interpretation_expected(cohort.analysis, "en")
    assert sentence is not None and f"({shown})" in sentence
    explanation = text.split("Probability of cost-effectiveness", 1)[1]
    assert f": {shown}, i.e." in explanation  # the number of the answer
    inmb = result.inmb_at("improvement", lam)
    assert inmb is not None
    assert f"= {fmt.euro(inmb.adjusted.estimate)} per patient" in text
    assert "Cost-effectiveness acceptability curve" in text
    ceac = [
        [
            fmt.euro(value),
            fmt.probability(result.probability_at("improvement", value)[0]),
            fmt.probability(result.probability_at("improvement", value)[1]),
        ]
        for value in sorted({*declared.shown, lam})
    ]
    rn.assert_tables_in_pdf(text, [("acceptability curve in numbers", ceac)])
    assert all("100" not in cell for row in ceac for cell in row[1:])  # "> 99 %", never 100 %
    page_two = subprocess.run(
        ["pdftotext", "-f", "2", "-l", "2", "-raw", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "What the terms mean" in page_two and "Willingness to pay" in page_two


def test_the_board_pack_has_both_pilots_two_pages_each(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
    tmp_path: Path,
) -> None:
    period = answered_period("bph")
    response = boss.get(f"/management/board-pack.pdf?period={period.code}&lang_pdf=fi")
    assert response.status_code == 200
    info = pdf_info(response.data, tmp_path)
    assert info["Pages"] == "4" and info["Tagged"] == "yes"
    structure = assert_accessible(response.data, "fi", tables=6, figures=1)
    assert structure.headings[:2] == [1, 2] and structure.headings.count(2) == 2
    text = rn.pdf_text(response.data, tmp_path)
    with rn.in_language(management_app, "fi"):
        names = [cohort_of(code).analysis.spec.name.get("fi") for code in PILOTS]
    assert text.index(names[0]) < text.index(names[1])
    (event,) = db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "board_pack")
    ).all()  # one export, one event
    assert event.details["pilots"] == list(PILOTS) and event.details["period"] == period.code


@pytest.mark.one_backend
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_of_the_summaries_is_inside_the_text_area(
    boss: FlaskClient,
    tmp_path: Path,
    language: str,
) -> None:
    """No table is wider than the page: long Finnish and Swedish words in headers and cells
    break instead of pushing the last column over the margin."""
    edge = 595.28 - 15 / 25.4 * 72 + 1.0  # management.css: 15 mm right margin
    for code in PILOTS:
        words = rn.pdf_word_boxes(summary_pdf(boss, code, language), tmp_path)
        assert len(words) > 300
        outside = sorted({word for _x0, x1, word in words if x1 > edge})
        assert outside == [], f"{code} {language}: words past the right margin: {outside}"


# -- small cells and periods -------------------------------------------------------------------


def test_a_small_group_in_a_quarter_is_hidden_there_and_in_the_longer_periods(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
) -> None:
    """Two outpatient-clinic patients left in a quarter: the quarter shows "<5" for them and
    the half-year and year containing it hide the arm's figures ("x"), so no difference of
    periods gives the two away."""
    _release, year = the_release()
    quarter = year.quarters()[1]
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    arms = dict(db.session.execute(select(Arm.code, Arm.id).where(Arm.pilot_id == pilot.id)).all())
    clinic = db.session.scalars(
        select(Enrolment.id)
        .where(
            Enrolment.pilot_id == pilot.id,
            Enrolment.arm_id == arms["outpatient_clinic"],
            Enrolment.index_date.between(quarter.start, quarter.end),
        )
        .order_by(Enrolment.id)
    ).all()
    assert len(clinic) > 2
    db.session.execute(
        update(Enrolment).where(Enrolment.id.in_(clinic[2:])).values(arm_id=arms["operating_room"])
    )
    db.session.commit()
    for period, expected in ((quarter, "<5"), (GridPeriod(year.year, "H", 1), "x"), (year, "x")):
        html = boss.get(f"/management/?pilot=bph&period={period.code}").get_data(as_text=True)
        first = rn.read_page(html).tables[0].rows[0]  # persons: arms, all
        assert first[2] == expected, (period, first)
        assert "x" in (first[1], first[3])  # a complementary cell, so the total cannot tell


def test_management_never_reaches_a_persons_data(
    boss: FlaskClient,
    management_app: Flask,  # noqa: F811
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
    for rule in management_app.url_map.iter_rules():
        if rule.endpoint == "static" or "GET" not in (rule.methods or set()):
            continue
        access = declared_access(management_app, rule.endpoint)
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
    _release, year = the_release()
    response = boss.get(f"/management/bph/summary.pdf?lang_pdf=de&period={year.code}")
    assert response.status_code == 200
    assert f"-{year.code}-fi-" in response.headers["Content-Disposition"]
