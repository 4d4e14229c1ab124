"""The pilot lead's cohort pages: sections, filters, the numbers behind every figure, small
cells and the CSV downloads (through the Flask test client, CSRF on)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlalchemy import select, update

from tests.conftest import PASSWORD, login
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus import queries
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Enrolment
from vaikuttavuus.services.analytics import ALL, CohortAnalysis, Filters
from vaikuttavuus.services.cohort_tables import TableRequest, cohort_table
from vaikuttavuus.services.cohort_view import (
    Labels,
    fmt_count,
    fmt_share,
    fmt_signed,
    icer_text,
)
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


def test_pages_show_the_analytics_figures(lead: FlaskClient, cohort_app: Flask) -> None:  # noqa: F811
    result = analysis("bph")
    with cohort_app.test_request_context(), force_locale("fi"):
        labels = Labels(result, "fi")
        rate = next(
            r
            for r in result.response_rates.table.records()
            if r["arm"] == ALL and r["time_point"] == "baseline"
        )
        change = next(
            r
            for r in result.outcomes.summary.records()
            if r["arm"] == "operating_room"
            and r["score"] == "ipss.total"
            and r["time_point"] == "m12"
        )
        qaly = result.cost_effectiveness.effects["qaly"]
        expected_overview = [fmt_share(rate["rate"]), fmt_count(rate["invited"])]
        expected_outcome = [
            fmt_signed(change["change_mean"]),
            fmt_share(change["share_responders"]),
        ]
        expected_cea = [
            icer_text(result.cost_effectiveness.effects[e], labels)
            for e in ("improvement", "responder", "qaly")
        ]
        expected_cea.append(fmt_share(qaly.ceac_at(20_000)))
        funnel = fmt_share(result.funnel.p0)
    overview = page(lead, "/pilot/bph/?section=overview")
    for text in expected_overview:
        assert text in overview
    outcomes = page(lead, "/pilot/bph/?section=outcomes")
    for text in expected_outcome:
        assert text in outcomes
    cea = page(lead, "/pilot/bph/?section=cea&effect=qaly")
    for text in expected_cea:
        assert text and text in cea
    assert funnel in page(lead, "/pilot/bph/?section=funnel")

    older = analysis("older-adults")
    with cohort_app.test_request_context(), force_locale("fi"):
        rows = older.services("ucla3.total", "service_type").forest_rows()
        friend = next(r for r in rows if r["category"] == "friend_service")
        estimate = fmt_signed(friend["estimate"], 2)
    services = page(lead, "/pilot/older-adults/?section=services&score=ucla3.total")
    assert estimate in services
    assert "Ystävä- ja vierailijatoiminta" in services  # the service type's Finnish name


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
    assert rows[0][:3] == ["group", "n", "responders"]
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
