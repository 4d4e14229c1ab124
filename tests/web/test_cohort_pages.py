"""The pilot lead's cohort pages: sections, filters, the numbers behind every figure, small
cells and the CSV downloads (through the Flask test client, CSRF on).

Every table of every section is compared cell by cell with the analytics' published tables
(``CohortAnalysis``, unfiltered and for each filter), formatted by the test itself
(``tests/web/report_numbers.py``); every *Numbers as CSV* link is compared with the same tables
and with the cells shown."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlalchemy import func, select, update

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.support.isolation import fresh_globals_per_request
from tests.web.report_numbers import (
    Cell,
    Expected,
    Formats,
    HtmlTable,
    Page,
    Source,
    assert_csv_equals_published,
    assert_rows,
    cea_summary_rows,
    enriched,  # noqa: F401
    expected_rows,
    expected_section,
    finnish,
    from_csv,
    in_language,
    layouts,
    outcome_columns,
    plane_records,
    read_csv,
    read_page,
    service_columns,
    service_keep,
    service_layout,
    text,
)
from vaikuttavuus import queries
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Enrolment, Pilot
from vaikuttavuus.services.analytics import CohortAnalysis, Filters
from vaikuttavuus.services.cohort_tables import TableRequest, cohort_table
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.users import create_user

SECTIONS = {
    "bph": ("overview", "quality", "outcomes", "costs", "cea", "funnel"),
    "older-adults": ("overview", "quality", "outcomes", "costs", "funnel", "services"),
}
CHART = re.compile(r'<img class="chart" src="data:image/svg\+xml;base64,[^"]+" alt="([^"]+)"')
CSV_LINK = re.compile(r'href="(/pilot/[^"]+/tables/[^"]+\.csv[^"]*)"')


def user_client(app: Flask, username: str, role: str) -> FlaskClient:
    fresh_globals_per_request(app)
    create_user(
        db.session,
        username=username,
        password=PASSWORD,
        role=role,
        pilot_codes=("bph", "older-adults") if role in ("clinician", "pilot_lead") else (),
    )
    db.session.commit()
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


@pytest.fixture
def lead(cohort_app: Flask) -> Iterator[FlaskClient]:  # noqa: F811
    yield user_client(cohort_app, "vastaava", "pilot_lead")


def fi(app: Flask, message: str, **variables: Any) -> str:
    """A UI text as the Finnish page shows it (translated or not yet)."""
    with app.test_request_context(), force_locale("fi"):
        return str(gettext(message, **variables))


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return unescape(response.get_data(as_text=True))


def analysis(code: str, filters: Filters | None = None) -> CohortAnalysis:
    pilot = queries.pilot_by_code(db.session, code)
    assert pilot is not None
    return CohortAnalysis(db.session, pilot, filters)


def test_every_section_renders_each_chart_with_its_numbers(lead: FlaskClient) -> None:
    for code, sections in SECTIONS.items():
        for section in sections:
            html = page(lead, f"/pilot/{code}/?section={section}")
            charts = CHART.findall(html)
            links = CSV_LINK.findall(html)
            assert len(links) >= max(1, len(charts)), (code, section)
            assert all(len(alt) > 20 for alt in charts)
            assert 'style="' not in html  # the CSP forbids inline styles
            if section in ("overview", "outcomes", "cea", "funnel", "services"):
                assert charts, (code, section)
    # sections of the other pilot are not offered
    assert "section=services" not in page(lead, "/pilot/bph/")
    assert "section=cea" not in page(lead, "/pilot/older-adults/")


# -- every number of every table: the pages against the analytics ---------------------------

CEA_EFFECTS = ("improvement", "responder", "qaly")


def locate(shown: Page, how: tuple[str, ...]) -> HtmlTable:
    if how[0] == "caption":
        return shown.by_caption(how[1])
    args = dict(part.split("=", 1) for part in how[2:])
    return shown.by_csv(how[1], **args)


def section_url(code: str, section: str, query: dict[str, str] | None = None, **extra: str) -> str:
    return f"/pilot/{code}/?" + urlencode({"section": section, **(query or {}), **extra})


class Downloads:
    """The CSV downloads of one test, each fetched once."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.seen: dict[str, pd.DataFrame] = {}

    def __call__(self, url: str) -> pd.DataFrame:
        if url not in self.seen:
            response = self.client.get(url)
            assert response.status_code == 200, url
            assert response.headers["Content-Type"].startswith("text/csv"), url
            self.seen[url] = read_csv(response.get_data(as_text=True))
        return self.seen[url]


def check_section(
    client: FlaskClient,
    app: Flask,
    code: str,
    section: str,
    result: CohortAnalysis,
    query: dict[str, str] | None = None,
    *,
    effect: str | None = None,
    score: str | None = None,
    downloads: Downloads | None = None,
    download: Callable[[HtmlTable], bool] = lambda _table: True,
    language: str = "fi",
) -> tuple[Page, Expected]:
    """The section's page shows exactly the analytics' tables (all of them, nothing else);
    with ``downloads``, the *Numbers as CSV* link of every table (``download`` chooses) gives
    the table's numbers."""
    extra = {k: v for k, v in {"effect": effect, "score": score}.items() if v}
    with client.session_transaction() as session:
        session["lang"] = language
    response = client.get(section_url(code, section, query, **extra))
    assert response.status_code == 200
    shown = read_page(response.get_data(as_text=True))
    with in_language(app, language):
        wanted = expected_section(result, section, effect=effect, score=score, language=language)
    found = []
    for how, rows, what in wanted.tables:
        table = locate(shown, how)
        found.append(id(table))
        assert_rows(table.rows, rows, f"{code}/{section} {query or {}}: {what}")
        if not rows:
            assert table.empty, what
    assert sorted(found) == sorted(id(t) for t in shown.tables), (
        "tables on the page that the test does not know",
        [t.caption for t in shown.tables if id(t) not in found],
    )
    if downloads is not None:
        for table in shown.tables:
            assert table.csv is not None, table.caption  # every table has its numbers
            if download(table):
                check_download(downloads, app, table, result)
    return shown, wanted


def check_download(
    downloads: Downloads, app: Flask, table: HtmlTable, result: CohortAnalysis
) -> None:
    """The CSV of a shown table holds the analytics' table, and the shown cells are its
    numbers formatted."""
    assert table.csv is not None
    frame = downloads(table.csv)
    name = table.csv_name
    assert name is not None
    args = table.csv_args
    request_ = TableRequest(effect=args.get("effect"), score=args.get("score"), by=args.get("by"))
    what = f"{table.csv}"
    with finnish(app):
        labels = Labels(result, "fi")
        fmt = Formats("fi")
        layout = layouts(labels)
        if name in ("cea_summary", "inmb", "ceac", "ce_plane"):
            check_cea_download(downloads, table, frame, result, labels, fmt)
            return
        published = cohort_table(result, name, request_)
        assert published is not None, what
        assert_csv_equals_published(frame, published, what)
        if name.startswith("primary_") or name in ("strategy_ceac", "methods"):
            return  # records of the analysis; the shown cells are checked by expected_section
        source = from_csv(frame, result.min_cell)
        if name == "outcomes":
            rule_scores = {f"{r.instrument}.{r.score}" for r in result.rules}
            score = next(s for s in result.outcomes.scores if labels.score(s) in table.caption)
            rows = expected_rows(
                source,
                outcome_columns(labels, score, score in rule_scores),
                fmt,
                keep=lambda record: record["score"] == score,
            )
        elif name.startswith("service_"):
            rows = expected_rows(
                source,
                service_layout(service_columns(labels, args["by"]), name, args),
                fmt,
                keep=service_keep(name, args, result.primary_time_point),
            )
        elif name.startswith("funnel_"):
            rows = expected_rows(source, layout["funnel"], fmt)
        else:
            rows = expected_rows(source, layout[name], fmt)
        assert_rows(table.rows, rows, f"{what} (from the CSV)")


def check_cea_download(
    downloads: Downloads,
    table: HtmlTable,
    frame: pd.DataFrame,
    result: CohortAnalysis,
    labels: Labels,
    fmt: Formats,
) -> None:
    """The CE tables derived from the downloads: the ICER table from ``cea_summary``, the CE
    plane's percentiles and quadrant shares from every replicate of ``ce_plane``, the CEAC at
    the shown λ from ``ceac`` and again from the replicates."""
    assert table.csv is not None
    name = table.csv_name
    effect = table.csv_args.get("effect")
    layout = layouts(labels)
    base, query = table.csv.split("/tables/")[0], urlsplit(table.csv).query
    if name == "cea_summary":
        rows = cea_summary_rows(frame.to_dict("records"), labels, fmt, text)
        assert_rows(table.rows, rows, "cea_summary (from the CSV)")
        return
    scale = result.cost_effectiveness.effects[str(effect)].scale
    if name == "inmb":
        assert list(frame["wtp"]) == list(scale.shown)
        rows = expected_rows(Source(frame.to_dict("records")), layout["inmb"], fmt)
        assert_rows(table.rows, rows, "inmb (from the CSV)")
        return
    plane = downloads(f"{base}/tables/ce_plane.csv?{query}")
    assert len(plane) == result.n_boot
    assert list(plane["replicate"]) == list(range(1, result.n_boot + 1))
    de, dc = plane["delta_effect"].to_numpy(float), plane["delta_cost"].to_numpy(float)
    if name == "ceac":
        assert list(frame["wtp"]) == list(scale.wtp)
        grid = frame.set_index("wtp")
        records = []
        for lam in scale.shown:
            from_replicates = float(np.mean(lam * de - dc > 0))
            assert grid.loc[lam, "ceac_bootstrap"] == pytest.approx(from_replicates, abs=1e-12)
            records.append(
                {
                    "wtp": lam,
                    "ceac_bootstrap": grid.loc[lam, "ceac_bootstrap"],
                    "ceac_parametric": grid.loc[lam, "ceac_parametric"],
                }
            )
        assert_rows(
            table.rows, expected_rows(Source(records), layout["ceac"], fmt), "ceac (from the CSV)"
        )
        return
    summary = downloads(f"{base}/tables/cea_summary.csv?{query}").set_index("effect")
    point = (summary.loc[effect, "delta_effect"], summary.loc[effect, "delta_cost"])
    rows = expected_rows(Source(plane_records(point, de, dc, text)), layout["ce_plane"], fmt)
    assert_rows(table.rows, rows, "ce_plane (from the CSV)")


@pytest.mark.usefixtures("enriched")
@pytest.mark.parametrize("code", ["bph", "older-adults"])
def test_every_table_of_every_section_shows_the_analytics_figures(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    code: str,
) -> None:
    """Unfiltered, each section of both pilots: every row and cell of every table is the
    analytics' number as the page formats it, and every *Numbers as CSV* link gives the same
    numbers (the analytics' published table, to the last bit)."""
    result = analysis(code)
    downloads = Downloads(lead)
    for section in SECTIONS[code]:
        if section == "cea":
            for effect in CEA_EFFECTS:  # the CSV links are alike for each effect: one checked
                check_section(
                    lead,
                    cohort_app,
                    code,
                    section,
                    result,
                    effect=effect,
                    downloads=downloads if effect == "qaly" else None,
                )
            continue
        shown, wanted = check_section(
            lead,
            cohort_app,
            code,
            section,
            result,
            downloads=downloads,  # the services' tables by provider sector are alike: one checked
            download=lambda table: table.csv_args.get("by") in (None, "service_type"),
        )
        if section == "outcomes" and result.outcomes.qaly_difference is not None:
            difference = result.outcomes.qaly_difference
            fmt = wanted.fmt
            with finnish(cohort_app):
                sentence = text(
                    "Baseline-adjusted QALY difference (%(intervention)s − %(reference)s): "
                    "%(estimate)s (95%% CI %(low)s … %(high)s).",
                    intervention=wanted.labels.arm(difference.intervention),
                    reference=wanted.labels.arm(difference.reference),
                    estimate=fmt.number(difference.estimate, 3),
                    low=fmt.number(difference.ci_low, 3),
                    high=fmt.number(difference.ci_high, 3),
                )
            html = unescape(shown.html)
            assert sentence in html or re.sub("\u2212(?=\\d)", "-", sentence) in html, sentence
        if section == "funnel":  # each unit is compared within its own arm
            with finnish(cohort_app):
                shares = [Formats("fi").share(p0) for p0 in result.funnel.p0_by_arm.values()]
            captions = [t.caption for t in shown.tables]
            assert len(shares) == 2 and captions, captions
            assert all(all(share in c for share in shares) for c in captions), captions
    if code == "older-adults":  # the management summary's second score, by its own link
        check_section(lead, cohort_app, code, "services", result, score="insecurity.safe_daily")
    else:  # English: decimal points, "€1,234", "84%" (and "−" as in every language)
        check_section(lead, cohort_app, code, "cea", result, effect="qaly", language="en")


def test_negative_figures_use_the_minus_sign(cohort_app: Flask) -> None:  # noqa: F811
    from flask import render_template_string

    from vaikuttavuus.services.cohort_view import fmt_number, fmt_signed

    with finnish(cohort_app):
        assert fmt_signed(-0.27, 2) == "\u22120,27"  # the signed figures: as intended
        assert render_template_string("{{ -0.001|num(3) }}") == "\u22120,001"
        assert fmt_number(-0.27, 2) == "\u22120,27"


def _rows_of(wanted: Expected, name: str) -> list[list[Cell]]:
    return next(rows for how, rows, what in wanted.tables if what == name)


def _count_enrolments(code: str, **where: Any) -> int:
    """Enrolments of the pilot counted in SQL, independently of the analytics' reads."""
    statement = (
        select(func.count())
        .select_from(Enrolment)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .where(Pilot.code == code)
    )
    if "unit" in where:
        statement = statement.where(Enrolment.unit == where["unit"])
    if "period" in where:
        start, end = where["period"]
        statement = statement.where(Enrolment.index_date >= start, Enrolment.index_date <= end)
    return int(db.session.scalar(statement) or 0)


FILTER_SECTIONS = {
    "arm": ("bph", ("overview", "outcomes", "costs", "cea")),
    "unit": ("bph", ("overview", "funnel")),
    "period": ("bph", ("overview", "costs")),
    "tp": ("bph", ("overview", "quality", "outcomes", "cea", "funnel")),
    "arm_services": ("older-adults", ("costs", "services")),
}


@pytest.mark.usefixtures("enriched")
@pytest.mark.parametrize("kind", list(FILTER_SECTIONS))
def test_each_filter_changes_the_numbers_to_the_analytics_for_that_filter(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
    kind: str,
) -> None:
    """With a filter in the query string, every table of the section is the analytics' table
    for that filter (``CohortAnalysis(filters)``), and the filter changes what it should."""
    code, sections = FILTER_SECTIONS[kind]
    pilot = queries.pilot_by_code(db.session, code)
    assert pilot is not None
    roster = analysis(code).roster
    if kind == "arm":
        query, filters = {"arm": "outpatient_clinic"}, Filters(arm="outpatient_clinic")
    elif kind == "arm_services":
        query, filters = {"arm": "client_guidance"}, Filters(arm="client_guidance")
    elif kind == "unit":
        unit = roster["unit"].value_counts().index[0]  # the largest unit
        query, filters = {"unit": unit}, Filters(unit=unit)
    elif kind == "period":
        dates = roster["index_date"].sort_values()
        start, end = dates.iloc[len(dates) // 4].date(), dates.iloc[3 * len(dates) // 4].date()
        query = {"from": start.isoformat(), "to": end.isoformat()}
        filters = Filters(period=(start, end))
    else:
        query, filters = {"tp": "m3"}, Filters(time_point="m3")
    filtered, everyone = analysis(code, filters), analysis(code)
    shown: dict[str, Expected] = {}
    for section in sections:
        _page, shown[section] = check_section(lead, cohort_app, code, section, filtered, query)
    with finnish(cohort_app):
        unfiltered = {s: expected_section(everyone, s) for s in sections}
        everyone_label, labels = text("All"), Labels(everyone, "fi")
    for section in sections:  # the filter changed every section it was applied to
        assert [t[1] for t in shown[section].tables] != [
            t[1] for t in unfiltered[section].tables
        ], section

    def row(wanted: Expected, name: str, first: str) -> list[Cell]:
        return next(r for r in _rows_of(wanted, name) if r[0] == first)

    if kind in ("arm", "arm_services"):
        chosen, other = filters.arm, next(a for a in everyone.arms if a != filters.arm)
        # the chosen arm's figures are the unfiltered ones of that arm, the other arm is empty
        for name in ("costs",):
            assert row(shown["costs"], name, labels.arm(chosen)) == row(
                unfiltered["costs"], name, labels.arm(chosen)
            )
            assert row(shown["costs"], name, labels.arm(other))[1] == "0"
        assert all(r[0] == labels.arm(chosen) for r in _rows_of(shown["costs"], "costs_by_product"))
    if kind == "arm":
        enrolled = {r[0]: r[1] for r in _rows_of(shown["overview"], "enrolment")}
        assert enrolled[labels.arm("operating_room")] == "0"
        assert enrolled[labels.arm("outpatient_clinic")] == Formats("fi").count(
            (roster["arm"] == "outpatient_clinic").sum()
        )
        outcome_rows = [
            r
            for how, rows, what in shown["outcomes"].tables
            if what.startswith("outcomes")
            for r in rows
        ]
        assert {r[1] for r in outcome_rows} <= {labels.arm("outpatient_clinic"), everyone_label}
        # no comparison within one arm
        assert all(r[1:4] == ["–", "–", "–"] for r in _rows_of(shown["cea"], "cea_summary"))
    if kind == "unit":
        enrolled = {r[0]: r[1] for r in _rows_of(shown["overview"], "enrolment")}
        assert enrolled[everyone_label] == Formats("fi").count(
            _count_enrolments(code, unit=filters.unit)
        )
        names = [what for _how, _rows, what in shown["funnel"].tables]
        assert names == ["funnel_professional"]  # one unit: nothing to compare units with
    if kind == "period":
        enrolled = {r[0]: r[1] for r in _rows_of(shown["overview"], "enrolment")}
        assert enrolled[everyone_label] == Formats("fi").count(
            _count_enrolments(code, period=filters.period)
        )
    if kind == "tp":
        with finnish(cohort_app):
            m3 = labels.time_point("m3")
        assert {r[0] for r in _rows_of(shown["overview"], "response_rates")} == {m3}
        assert {r[1] for r in _rows_of(shown["quality"], "data_quality")} == {m3}
        outcome_rows = [
            r
            for how, rows, what in shown["outcomes"].tables
            if what.startswith("outcomes")
            for r in rows
        ]
        assert outcome_rows and {r[0] for r in outcome_rows} == {m3}
        # the follow-up moves the improvement and responder effects, not the QALYs
        summary = {r[0]: r for r in _rows_of(shown["cea"], "cea_summary")}
        before = {r[0]: r for r in _rows_of(unfiltered["cea"], "cea_summary")}
        with finnish(cohort_app):
            qaly, improvement = labels.effect("qaly"), labels.effect("improvement")
        assert summary[qaly] == before[qaly]
        assert summary[improvement] != before[improvement]


def test_filters_change_the_numbers(lead: FlaskClient, cohort_app: Flask) -> None:  # noqa: F811
    people = queries.enrolment_overview(db.session, queries.pilot_by_code(db.session, "bph").id)  # type: ignore[union-attr]
    total = len(people)
    theatre = int((people["arm"] == "operating_room").sum())
    everyone_label = fi(cohort_app, "All")

    def enrolled(html: str) -> dict[str, str]:
        table = html.split("</table>", 1)[0]
        rows = re.findall(r'<th scope="row">([^<]+)</th><td class="num">(.*?)</td>', table)
        return dict(rows)

    everyone = enrolled(page(lead, "/pilot/bph/?section=overview"))
    assert everyone[everyone_label] == fmt_number_plain(total)
    only = enrolled(page(lead, "/pilot/bph/?section=overview&arm=operating_room"))
    assert only["Leikkaussali"] == fmt_number_plain(theatre)
    assert only["Poliklinikka"] == "0"
    dates = pd.to_datetime(people["index_date"]).sort_values()
    cut = dates.iloc[total // 2].date()
    wanted = int((pd.to_datetime(people["index_date"]) <= pd.Timestamp(cut)).sum())
    half = enrolled(page(lead, f"/pilot/bph/?section=overview&to={cut.isoformat()}"))
    assert half[everyone_label] == fmt_number_plain(wanted) != everyone[everyone_label]
    # the time point filter restricts the response-rate table to that time point
    caption = fi(cohort_app, "Response rate per time point and arm")
    rates = page(lead, "/pilot/bph/?section=overview&tp=m3").split(caption, 1)[1]
    rates = rates.split("</table>", 1)[0]
    assert "3 kuukautta" in rates and "12 kuukautta" not in rates
    # nonsense filter values are ignored, not errors
    assert page(lead, "/pilot/bph/?section=overview&arm=x&unit=y&tp=z&from=nope")
    # a reversed period says so and shows the whole period, not the zeros of an empty one
    reversed_html = page(lead, f"/pilot/bph/?section=overview&from={cut.isoformat()}&to=2000-01-01")
    assert enrolled(reversed_html)[everyone_label] == everyone[everyone_label]
    notice = fi(
        cohort_app,
        "The period's start (%(start)s) is after its end (%(end)s): the whole "
        "period is shown. Choose a start before the end.",
    ).split("(")[0]
    assert notice and notice in unescape(reversed_html)


def fmt_number_plain(value: int) -> str:
    return f"{value:,}".replace(",", "\xa0")


def test_small_cells_are_hidden_on_the_pages(lead: FlaskClient) -> None:
    people = queries.enrolment_overview(db.session, queries.pilot_by_code(db.session, "bph").id)  # type: ignore[union-attr]
    people["index_date"] = pd.to_datetime(people["index_date"])
    dates = sorted(set(people["index_date"]))
    for first in dates:
        inside = people[people["index_date"] >= first]
        small = inside.sort_values("index_date")
        for last in sorted(set(small["index_date"])):
            part = small[small["index_date"] <= last]
            counts = part["arm"].value_counts()
            if (
                1 <= counts.get("outpatient_clinic", 0) <= 4
                and counts.get("operating_room", 0) >= 5
            ):
                break
        else:
            continue
        break
    html = page(
        lead,
        f"/pilot/bph/?section=overview&from={first.date().isoformat()}&to={last.date().isoformat()}",
    )
    table = html.split("</table>", 1)[0]
    clinic = re.search(r'<th scope="row">Poliklinikka</th><td class="num">(.*?)</td>', table)
    theatre = re.search(r'<th scope="row">Leikkaussali</th><td class="num">(.*?)</td>', table)
    assert clinic and clinic.group(1) == "<5"
    assert theatre and theatre.group(1) == "x"  # complementary: the total would reveal it


def test_csv_downloads_equal_the_tables_are_audited_and_formula_safe(
    lead: FlaskClient,
    cohort_app: Flask,  # noqa: F811
) -> None:
    payload = '=HYPERLINK("http://evil.example","x")'
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    db.session.execute(
        update(Enrolment)
        .where(Enrolment.pilot_id == pilot.id, Enrolment.unit == "Poliklinikka Lahti")
        .values(unit=payload)
    )
    db.session.commit()
    response = lead.get("/pilot/bph/tables/funnel_unit.csv")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Type"].startswith("text/csv")
    text = response.get_data(as_text=True).removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["group", "arm", "n", "responders"]
    cells = [cell for row in rows for cell in row]
    assert "'" + payload in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "export_csv" and event.object_id == "funnel_unit"

    expected = cohort_table(analysis("bph"), "ceac", TableRequest(effect="qaly"))
    assert expected is not None
    ceac = list(
        csv.DictReader(
            io.StringIO(
                lead.get("/pilot/bph/tables/ceac.csv?effect=qaly")
                .get_data(as_text=True)
                .removeprefix("\ufeff")
            )
        )
    )
    assert len(ceac) == len(expected) == 501
    for row, (_index, wanted) in zip(ceac, expected.iterrows(), strict=True):
        assert float(row["wtp"]) == wanted["wtp"]
        assert float(row["ceac_bootstrap"]) == pytest.approx(wanted["ceac_bootstrap"], abs=1e-12)
    negative = list(
        csv.DictReader(
            io.StringIO(
                lead.get("/pilot/bph/tables/ce_plane.csv?effect=qaly")
                .get_data(as_text=True)
                .removeprefix("\ufeff")
            )
        )
    )
    assert any(row["delta_cost"].startswith("-") for row in negative)  # numbers stay numbers
    float(negative[0]["delta_cost"])

    small = lead.get("/pilot/bph/tables/enrolment.csv?arm=outpatient_clinic")
    by_arm = {
        r["arm"]: r
        for r in csv.DictReader(io.StringIO(small.get_data(as_text=True).removeprefix("\ufeff")))
    }
    assert by_arm["operating_room"]["enrolled"] == "0"
    assert lead.get("/pilot/bph/tables/nonsense.csv").status_code == 404
    assert lead.get("/pilot/older-adults/tables/cea_summary.csv").status_code == 404


def test_the_mixed_model_is_fitted_on_request(lead: FlaskClient, cohort_app: Flask) -> None:  # noqa: F811
    before = page(lead, "/pilot/older-adults/?section=services&score=ucla3.total")
    header = fi(cohort_app, "Difference in yearly change")
    assert "mixed=1" in before and header not in before
    html = page(lead, "/pilot/older-adults/?section=services&score=ucla3.total&mixed=1")
    assert header in html
    assert (
        lead.get("/pilot/older-adults/tables/mixed_model.csv?score=ucla3.total").status_code == 200
    )


@pytest.mark.parametrize("role", ["management", "clinician", "admin"])
def test_only_pilot_leads_reach_the_cohort_pages(cohort_app: Flask, role: str) -> None:  # noqa: F811
    client = user_client(cohort_app, f"user_{role}", role)
    for url in (
        "/pilot/bph/",
        "/pilot/bph/?section=cea",
        "/pilot/bph/tables/enrolment.csv",
        "/pilot/bph/management.pdf",
    ):
        assert client.get(url).status_code == 403, (role, url)


def test_pilot_leads_only_see_their_own_pilots(cohort_app: Flask) -> None:  # noqa: F811
    fresh_globals_per_request(cohort_app)
    create_user(
        db.session, username="bph_lead", password=PASSWORD, role="pilot_lead", pilot_codes=("bph",)
    )
    db.session.commit()
    client = cohort_app.test_client()
    assert login(client, "bph_lead").status_code == 302
    assert client.get("/pilot/bph/").status_code == 200
    assert client.get("/pilot/older-adults/").status_code == 403
    assert client.get("/pilot/older-adults/tables/enrolment.csv").status_code == 403


def test_the_pilot_lead_downloads_the_management_summary(lead: FlaskClient) -> None:
    response = lead.get("/pilot/bph/management.pdf?lang_pdf=sv")
    assert response.status_code == 200
    assert response.data.startswith(b"%PDF-")
    assert "attachment" in response.headers["Content-Disposition"]
    assert "-sv-" in response.headers["Content-Disposition"]


def test_the_costs_pages_are_linked(lead: FlaskClient, cohort_app: Flask) -> None:  # noqa: F811
    rules = {rule.rule.rstrip("/") for rule in cohort_app.url_map.iter_rules()}
    assert "/costs/<pilot_code>" in rules  # built by another part of the application
    html = page(lead, "/pilot/bph/?section=costs")
    assert 'href="/costs/bph/"' in html
