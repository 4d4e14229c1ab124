"""A third pilot defined in YAML only (the suite's knee arthroplasty pilot,
``tests/fixtures/knee_pilot``): its own higher-is-better instrument, arms and procedure
settings, taken end to end — ``init`` loads it; people, procedures, costs and questionnaire
answers are imported; one answer is given through the patient pages; the clinician page, the
cohort page, ``report estimates`` and the PDFs are right for it in Finnish, Swedish and
English (docs/adding-a-pilot.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import FORM_TOKEN_FIELD, login
from tests.support.cli import run_cli
from tests.support.import_files import csv_bytes
from tests.support.knee_pilot import INSTRUMENT, ITEMS, PILOT, definition_folders
from tests.web.report_numbers import pdf_text
from tests.web.test_walking_skeleton import answer_pages
from vaikuttavuus.cli import main
from vaikuttavuus.domain import identity
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Enrolment, Person, Procedure
from vaikuttavuus.services.definitions import sync_definitions

TODAY = date.today()
INDEX = TODAY - timedelta(days=400)
"""Everyone's operation: the 12-month follow-up is answered (its window is still open)."""
PER_ARM = 7
UNTRANSLATED = re.compile(r'<span lang="en">|<code class="small" translate="no">')
# knee12 totals (0–48, higher is better) at baseline, 6 and 12 months: both arms improve, day
# surgery a little more; the last day-surgery patient gets worse by 6 months (an alert).
INPATIENT = [(16, 30, 36), (18, 31, 36), (20, 33, 37), (14, 28, 33), (22, 34, 38),
             (17, 29, 35), (19, 32, 36)]  # fmt: skip
DAY_SURGERY = [(15, 33, 40), (16, 34, 42), (14, 31, 38), (17, 35, 43), (15, 32, 41),
               (16, 33, 42), (30, 20, 22)]  # fmt: skip


def items(total: int) -> list[int]:
    """Twelve answers (0–4) that add up to ``total``."""
    return [total // 12 + (1 if n < total % 12 else 0) for n in range(12)]


def code(n: int) -> str:
    """A valid synthetic identity code (individual number 900–999: odd for men, even for
    women), born 1948–1957."""
    digits, number = f"{n + 1:02d}03{48 + n % 10}", f"{901 + n:03d}"
    return f"{digits}-{number}{identity.check_character(digits, number)}"


@pytest.fixture
def knee_app(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The test app with the knee pilot's definitions loaded next to the shipped ones."""
    for name, folder in definition_folders(tmp_path / "definitions").items():
        monkeypatch.setenv(name, str(folder))
    sync_definitions(db.session)
    db.session.commit()
    yield app


def import_file(app: Flask, tmp_path: Path, kind: str, header: list[str], rows: list[Any]) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(csv_bytes(header, rows))
    result = app.test_cli_runner().invoke(main, ["import", kind, str(path), "--pilot", PILOT])
    assert result.exit_code == 0, result.output
    db.session.rollback()


def import_everything(app: Flask, tmp_path: Path) -> list[str]:
    """People, procedures, costs and answers of both arms through ``vaikuttavuus import``;
    the codes of the persons (inpatient first)."""
    arms = ["inpatient"] * PER_ARM + ["day_surgery"] * PER_ARM
    codes = [code(n) for n in range(len(arms))]
    import_file(app, tmp_path, "people",
                ["identity_code", "arm", "index_date", "enrolled_on", "sex", "unit"],
                [[c, arm, INDEX, INDEX - timedelta(days=30), identity.sex(c), "Tekonivelkirurgia"]
                 for c, arm in zip(codes, arms, strict=True)])  # fmt: skip
    settings = {"inpatient": "inpatient_theatre", "day_surgery": "day_surgery_unit"}
    import_file(app, tmp_path, "procedures",
                ["identity_code", "procedure_type", "setting", "performed_on"],
                [[c, "tka" if n % 3 else "uka", settings[arm], INDEX]
                 for n, (c, arm) in enumerate(zip(codes, arms, strict=True))])  # fmt: skip
    import_file(app, tmp_path, "resource_use",
                ["identity_code", "product_code", "quantity", "service_date"],
                [row for n, (c, arm) in enumerate(zip(codes, arms, strict=True)) for row in (
                    [c, "OR_MINUTE", (95 if arm == "inpatient" else 85) + n % 4 * 7, INDEX],
                    [c, "UROLOGY_WARD_DAY", 2 + n % 3, INDEX] if arm == "inpatient"
                    else [c, "PACU_HOUR", 4 + n % 2, INDEX])])  # fmt: skip
    header = ["identity_code", "time_point", "instrument", "completed_on", *ITEMS,
              "mo", "sc", "ua", "pd", "ad", "vas"]  # fmt: skip
    rows: list[list[Any]] = []
    offsets = {"baseline": -10, "m6": 182, "m12": 365}
    for n, (c, totals) in enumerate(zip(codes, INPATIENT + DAY_SURGERY, strict=True)):
        for (tp, day), total in zip(offsets.items(), totals, strict=True):
            if c == codes[0] and tp == "m12":
                continue  # answered through the patient pages below
            when = INDEX + timedelta(days=day)
            worse = 4 - total // 12  # EQ-5D-5L levels 1–5 that follow the knee score
            eq5d = [worse, 1 + n % 2, max(1, worse - n % 3), 1 + (n + day) % 3, 1 + n % 2]
            rows.append([c, tp, INSTRUMENT, when, *items(total), *[""] * 6])
            rows.append([c, tp, "eq5d5l", when, *[""] * 12, *eq5d, total + 40])
    import_file(app, tmp_path, "responses", header, rows)
    return codes


def pseudonym(identity_code: str) -> str:
    from vaikuttavuus.services.enrolment import hash_identity_code

    person = db.session.scalar(
        select(Person).where(Person.identity_hash == hash_identity_code(identity_code))
    )
    assert person is not None
    return str(person.pseudonym)


def user(app: Flask, make_user: Any, name: str, role: str) -> FlaskClient:
    make_user(name, role, pilots=(PILOT,))
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    html = response.get_data(as_text=True)
    assert not UNTRANSLATED.search(html), (path, UNTRANSLATED.search(html))
    return html


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_init_loads_the_knee_pilot_from_yaml_only(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VAIKUTTAVUUS_")}
    env.pop("DATABASE_URL", None)
    env["VAIKUTTAVUUS_INSTANCE"] = str(tmp_path / "instance")
    env.update({name: str(path) for name, path in definition_folders(tmp_path).items()})
    result = run_cli("init", env=env)
    assert result.returncode == 0, result.stderr
    assert "knee12@1" in result.stdout and "pilots added: bph, knee, older-adults" in result.stdout


@pytest.mark.one_backend  # the definitions are under test; the database layer has its own
def test_the_knee_pilot_end_to_end(
    knee_app: Flask, tmp_path: Path, make_user: Any, patient_link: Any
) -> None:
    codes = import_everything(knee_app, tmp_path)
    settings = set(db.session.scalars(select(Procedure.setting)))
    assert settings == {"inpatient_theatre", "day_surgery_unit"}

    # the first inpatient answers the 12-month questionnaire through the patient pages
    enrolment = db.session.scalar(
        select(Enrolment).join(Person).where(Person.pseudonym == pseudonym(codes[0]))
    )
    token = patient_link(enrolment, "m12")
    patient = knee_app.test_client()
    answers = dict.fromkeys(ITEMS, "3") | {"mo": "1", "sc": "1", "ua": "1", "pd": "2",
                                            "ad": "1", "vas": "80"}  # fmt: skip
    review = answer_pages(patient, token, answers)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token is not None and "KF-12" in review
    sent = patient.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert sent.status_code == 302

    # the clinician page: the score rises (higher is better), settings by name, an alert on a drop
    clinician = user(knee_app, make_user, "kirurgi", "clinician")
    first = page(clinician, f"/clinician/{PILOT}/{pseudonym(codes[0])}?lang=sv")
    assert "Operationssal och vårdavdelning" in first and "Knäts funktion" in first
    assert "36" in text(first)  # 12 × 3 answered on the patient pages
    worse = page(clinician, f"/clinician/{PILOT}/{pseudonym(codes[-1])}?lang=fi")
    assert 'data-alert="worse"' in worse and "Päiväkirurgian yksikkö" in worse
    better = page(clinician, f"/clinician/{PILOT}/{pseudonym(codes[-2])}?lang=en")
    assert 'data-alert="worse"' not in better and "Satisfactory" in better
    summary = clinician.get(f"/clinician/{PILOT}/{pseudonym(codes[-1])}/summary.pdf?lang=sv")
    assert summary.status_code == 200 and summary.data.startswith(b"%PDF-")

    # the cohort page in three languages
    lead = user(knee_app, make_user, "vastuu", "pilot_lead")
    for language in ("fi", "sv", "en"):
        for section in ("overview", "quality", "outcomes", "costs", "cea", "funnel"):
            page(lead, f"/pilot/{PILOT}/?section={section}&lang={language}")
    outcomes = page(lead, f"/pilot/{PILOT}/?section=outcomes&lang=en")
    assert "Knee function" in outcomes and "Follow-up mean (both answers)" in outcomes
    cea = text(page(lead, f"/pilot/{PILOT}/?section=cea&lang=fi"))
    assert "polven toimintakyvyn piste" in cea
    imports = page(lead, f"/imports/{PILOT}/?lang=en")
    assert "inpatient_theatre" in imports and "day_surgery_unit" in imports
    # every PDF in three languages, each with the pilot's own names in that language
    names = {
        "fi": ("Polven tekonivelleikkaus", "Päiväkirurgia"),
        "sv": ("Knäprotesoperation", "Dagkirurgi"),
        "en": ("Knee arthroplasty", "Day surgery"),
    }
    for language, (pilot_name, arm_name) in names.items():
        pdfs = (
            (lead, f"/pilot/{PILOT}/summary.pdf?lang={language}"),
            (lead, f"/pilot/{PILOT}/management.pdf?lang_pdf={language}"),
            (
                clinician,
                f"/clinician/{PILOT}/{pseudonym(codes[-1])}/summary.pdf?lang_pdf={language}",
            ),
        )
        for client, path in pdfs:
            response = client.get(path)
            assert response.status_code == 200 and response.data.startswith(b"%PDF-"), path
            shown = pdf_text(response.data, tmp_path)
            assert pilot_name in shown and arm_name in shown, path

    # report estimates: day surgery against inpatient care, in points of knee function
    result = knee_app.test_cli_runner().invoke(
        main, ["report", "estimates", "--pilot", PILOT, "--bootstrap", "200", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["comparison"] == {"reference": "inpatient", "other": "day_surgery"}
    assert data["primary"]["outcome"] == "knee12.total"
    effect = data["estimates"]["delta_effect"]["unadjusted"]
    assert effect["n"] == 2 * PER_ARM
    assert set(data["estimates"]["inmb"]) == {"0", "50", "100", "200", "400"}
    # higher is better: the day-surgery arm improved more, except its one who got worse
    improvement = {
        arm: sum(m12 - base for base, _m6, m12 in rows) / len(rows)
        for arm, rows in (("inpatient", INPATIENT), ("day_surgery", DAY_SURGERY))
    }
    expected = improvement["day_surgery"] - improvement["inpatient"]
    assert effect["estimate"] == pytest.approx(expected, abs=1e-9) and expected > 0
