"""No N+1 queries: the statements a page runs do not grow with the number of patients.

Each test builds a cohort of :data:`SMALL` patients per pilot (answers at every time point,
measurements with a correction, procedures, costs, services) through the public fixtures and
models, counts the SQL statements (``before_cursor_execute`` on the engine) of every page and
report of one audience, grows the cohort to :data:`LARGE` patients and counts again. A page that
reads something per patient runs more statements on the larger cohort; every page must run
exactly as many (at most :data:`SLACK` more) and fewer than :data:`MAX_STATEMENTS`. Each request
starts on an empty ORM identity map, so objects the test loaded cannot hide a lazy load, and
streamed downloads are read whole inside the count.

:data:`SMALL` is 10 so that both cohorts show every section: each arm reaches the minimum cell
size (5), and the case-mix adjusted net-benefit regression has more persons than terms.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from tests.support.answering import raw_answer
from tests.support.isolation import fresh_globals_per_request
from tests.support.recording import count_statements
from tests.support.staff import staff_login
from vaikuttavuus.domain.answers import canonical
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    AnalysisSnapshot,
    Answer,
    ClinicalMeasurement,
    CostItem,
    Invitation,
    Procedure,
    Response,
    ServiceExposure,
    utcnow,
)
from vaikuttavuus.services import reference_cache, snapshots
from vaikuttavuus.services.cohort_page import SECTIONS
from vaikuttavuus.services.definitions import current_instrument, instrument_spec

# The ORM issues the same statements on every dialect, so one backend shows an N+1.
pytestmark = pytest.mark.one_backend

SMALL = 10
LARGE = 3 * SMALL
SLACK = 0
"""How many more statements a page may run on the larger cohort."""
MAX_STATEMENTS = 100
"""No page needs more statements than this, whatever the cohort. The cohort and management
pages and the cohort summary PDF count the building of their analysis snapshot too (the tests'
queue is immediate: the worker's reads run inside the request), about 35 statements of
snapshot bookkeeping (the lookups before and after, the claim, the progress, the store, the
pruning of superseded snapshots) on top of the analysis' own reads (the older adults' summary
PDF: 84 in all); served from a stored snapshot they run about 25. A table CSV asked for
without its section (``outcomes.csv`` here: 93 and 97) builds the default section's snapshot,
then looks for a section's snapshot that holds the table (about 7 statements) before computing
it in the request."""

PILOTS: dict[str, dict[str, Any]] = {
    "bph": {
        "arms": ("operating_room", "outpatient_clinic"),
        "sex": "male",
        "answers": {
            "baseline": ("ipss", "eq5d5l"),
            "m3": ("ipss", "eq5d5l", "prem_bph"),
            "m12": ("ipss", "eq5d5l"),
        },
    },
    "older-adults": {
        "arms": ("outreach", "client_guidance"),
        "sex": "female",
        "answers": {
            "baseline": ("ucla3", "djg6", "lonely1", "insecurity"),
            "m6": ("ucla3", "djg6", "lonely1", "insecurity", "prem_services"),
            "m12": ("ucla3", "djg6", "lonely1", "insecurity"),
        },
    },
}
INDEX_OFFSET_DAYS = -430
"""Every time point's window has closed: each patient has answers at every time point."""


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@dataclass
class Cohort:
    """Both pilots' patients, grown on demand; ``pseudonyms`` in enrolment order per pilot."""

    enrol_patient: Callable[..., Any]
    pseudonyms: dict[str, list[str]] = field(default_factory=lambda: {p: [] for p in PILOTS})

    def grow(self, size: int) -> None:
        for pilot in PILOTS:
            while len(self.pseudonyms[pilot]) < size:
                self.pseudonyms[pilot].append(self._patient(pilot, len(self.pseudonyms[pilot])))

    def _patient(self, pilot: str, n: int) -> str:
        settings = PILOTS[pilot]
        enrolment = self.enrol_patient(
            pilot=pilot,
            arm=settings["arms"][n % 2],
            index_offset_days=INDEX_OFFSET_DAYS - n,
            sex=settings["sex"],
            birth_year=1940 + n,
            lives_alone=n % 3 == 0,
        )
        enrolment.unit = f"Yksikkö {'AB'[n % 2]}"
        rng = random.Random(f"{pilot}-{n}")
        now = utcnow()
        for invitation in db.session.scalars(
            select(Invitation).where(Invitation.enrolment_id == enrolment.id)
        ):
            for code in settings["answers"][invitation.time_point.code]:
                version = current_instrument(db.session, code)
                spec = instrument_spec(version)
                response = Response(
                    enrolment_id=enrolment.id,
                    time_point_id=invitation.time_point_id,
                    invitation_id=invitation.id,
                    instrument_version_id=version.id,
                    instrument_code=code,
                    status="submitted",
                    idempotency_key=uuid.uuid4().hex,
                    submitted_at=now,
                )
                for item in spec.items:
                    stored = canonical(spec, item, raw_answer(spec, item, rng))
                    if stored is not None:
                        response.answers.append(
                            Answer(item_id=item.id, value=stored.value, value_num=stored.value_num)
                        )
                db.session.add(response)
            invitation.status = "completed"
            invitation.completed_at = now
            invitation.reminders_sent = n % 2
        if pilot == "bph":
            self._procedure_and_measures(enrolment, n)
        else:
            self._services(enrolment, n)
        db.session.commit()
        return str(enrolment.person.pseudonym)

    @staticmethod
    def _procedure_and_measures(enrolment: Any, n: int) -> None:
        index = enrolment.index_date
        db.session.add(
            Procedure(
                enrolment_id=enrolment.id,
                procedure_type=("turp", "holep", "rezum")[n % 3],
                setting="operating_room" if n % 2 == 0 else "outpatient_clinic",
                performed_on=index,
                drg_code="11M",
                unit=enrolment.unit,
                surgeon_code=f"K{n % 2}",
            )
        )
        wrong = ClinicalMeasurement(
            enrolment_id=enrolment.id,
            measure_code="qmax",
            value_num=99.0,
            unit="mL/s",
            measured_on=index - timedelta(days=10),
        )
        db.session.add(wrong)
        db.session.flush()
        corrected = ClinicalMeasurement(
            enrolment_id=enrolment.id,
            measure_code="qmax",
            value_num=8.0 + n % 4,
            unit="mL/s",
            measured_on=index - timedelta(days=10),
            correction_reason="typo",
        )
        db.session.add(corrected)
        db.session.flush()
        wrong.superseded_by_id = corrected.id
        wrong.superseded_at = utcnow()
        for days, value in ((95, 15.0 + n % 5), (370, 16.0 + n % 3)):
            db.session.add(
                ClinicalMeasurement(
                    enrolment_id=enrolment.id,
                    measure_code="qmax",
                    value_num=value,
                    unit="mL/s",
                    measured_on=index + timedelta(days=days),
                )
            )
        db.session.add(
            ClinicalMeasurement(
                enrolment_id=enrolment.id,
                measure_code="prostate_volume",
                value_num=40.0 + (7 * n) % 23,
                unit="mL",
                measured_on=index - timedelta(days=20),
            )
        )
        for product, quantity, days in (
            ("URO_VISIT_FIRST", 1.0, -30),
            ("OR_MINUTE" if n % 2 == 0 else "PROC_ROOM_MINUTE", 45.0 + n, 0),
            ("UROLOGY_WARD_DAY", 1.0 + n % 2, 1),
            ("URO_VISIT_FOLLOWUP", 1.0, 90),
        ):
            db.session.add(
                CostItem(
                    enrolment_id=enrolment.id,
                    kind="resource_use",
                    product_code=product,
                    quantity=quantity,
                    service_date=index + timedelta(days=days),
                )
            )
        db.session.add(
            CostItem(
                enrolment_id=enrolment.id,
                kind="direct",
                amount_eur=120.0 + n,
                price_year=2025,
                service_date=index + timedelta(days=30),
                description="Lääkkeet",
            )
        )

    @staticmethod
    def _services(enrolment: Any, n: int) -> None:
        index = enrolment.index_date
        for product, quantity, days in (
            ("OUTREACH_VISIT" if n % 2 == 0 else "CLIENT_GUIDANCE_CONTACT", 1.0 + n % 3, 0),
            ("DAY_ACTIVITY_DAY", 4.0 + n % 5, 30),
            ("HOME_CARE_VISIT", 2.0 * (n % 4), 60),
        ):
            db.session.add(
                CostItem(
                    enrolment_id=enrolment.id,
                    kind="resource_use",
                    product_code=product,
                    quantity=quantity,
                    service_date=index + timedelta(days=days),
                )
            )
        for service, sector, contacts in (
            (("day_activity", "friend_service", "group_activity")[n % 3], "municipality", 10 + n),
            ("digital_contact" if n % 2 else "home_care", ("ngo", "county")[n % 2], 5 + n % 4),
        ):
            db.session.add(
                ServiceExposure(
                    enrolment_id=enrolment.id,
                    service_type=service,
                    provider_sector=sector,
                    provider_name=f"Palvelu {n % 3}",
                    started_on=index + timedelta(days=7),
                    ended_on=index + timedelta(days=300),
                    contacts=contacts,
                    cost_eur=50.0 * contacts,
                )
            )


@pytest.fixture
def cohort(app: Flask, enrol_patient: Any) -> Cohort:
    result = Cohort(enrol_patient)
    result.grow(SMALL)
    return result


def statements_of(client: FlaskClient, path: str) -> list[str]:
    """The statements of one request of ``path``, its body read whole (streamed downloads run
    their reads while the body is read), on an empty identity map and with no cohort
    reference cached (else the clinician page's first view after the cohort grew would also
    read what was added since: a few statements more, once) and no analysis snapshot stored
    or held in the process (so every cohort page is measured computing its snapshot and
    reading it back, on either cohort)."""
    db.session.remove()
    reference_cache.clear()
    snapshots.forget_states()
    db.session.execute(delete(AnalysisSnapshot))
    db.session.commit()
    db.session.remove()
    with count_statements() as statements:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert response.get_data()
    return list(statements)


def compare(client: FlaskClient, cohort: Cohort, paths: Callable[[], Iterable[str]]) -> None:
    """Every path runs as many statements on the grown cohort as on the small one (a failure
    names the paths, both counts and the statements the larger cohort repeated)."""
    first = next(iter(paths()))
    assert client.get(first).get_data()  # warm-up: the login's first request, process caches
    small = {path: statements_of(client, path) for path in paths()}
    cohort.grow(LARGE)
    large = {path: statements_of(client, path) for path in paths()}
    growing = {
        path: {
            "statements": (len(small[path]), len(large[path])),
            "repeated": [s[:300] for s in Counter(large[path]) - Counter(small[path])][:3],
        }
        for path in small
        if len(large[path]) - len(small[path]) > SLACK
    }
    assert not growing, growing
    assert all(len(statements) < MAX_STATEMENTS for statements in large.values()), {
        path: len(statements)
        for path, statements in large.items()
        if len(statements) >= MAX_STATEMENTS
    }


def test_clinician_pages_do_not_query_per_patient(
    client: FlaskClient, make_user: Any, cohort: Cohort
) -> None:
    make_user("kliinikko", "clinician")
    staff_login(client, "kliinikko")

    def paths() -> list[str]:
        return [
            path
            for pilot, pseudonyms in cohort.pseudonyms.items()
            for path in (
                f"/clinician/{pilot}/",
                f"/clinician/{pilot}/?q=potilas",
                f"/clinician/{pilot}/{pseudonyms[0]}",
                f"/clinician/{pilot}/{pseudonyms[0]}/summary.pdf",
                f"/measurements/{pilot}/{pseudonyms[0]}",
            )
        ]

    compare(client, cohort, paths)


def test_pilot_lead_pages_and_reports_do_not_query_per_patient(
    client: FlaskClient, make_user: Any, cohort: Cohort
) -> None:
    make_user("vastaava", "pilot_lead")
    staff_login(client, "vastaava")
    sections = {
        "bph": [s for s in SECTIONS if s != "services"],
        "older-adults": [s for s in SECTIONS if s != "cea"],
    }

    def paths() -> list[str]:
        result = []
        for pilot, pseudonyms in cohort.pseudonyms.items():
            result += [f"/pilot/{pilot}/?section={section}" for section in sections[pilot]]
            result += [
                f"/pilot/{pilot}/?section=overview&arm={PILOTS[pilot]['arms'][0]}&unit=Yksikkö A",
                f"/pilot/{pilot}/tables/outcomes.csv",
                f"/pilot/{pilot}/summary.pdf",
                f"/costs/{pilot}/",
                f"/costs/{pilot}/{pseudonyms[0]}",
                f"/invitations/{pilot}/",
                f"/invitations/{pilot}/?status=completed",
            ]
        return result

    compare(client, cohort, paths)


def test_cohort_exports_do_not_query_per_patient(
    client: FlaskClient, make_user: Any, cohort: Cohort
) -> None:
    make_user("vientivastaava", "pilot_lead")
    staff_login(client, "vientivastaava")

    def paths() -> list[str]:
        return [
            f"/exports/{pilot}/{name}"
            for pilot in PILOTS
            for name in (
                "long.csv",
                "wide.csv",
                "long.xlsx",
                "wide.xlsx",
                "long-dictionary.csv",
                "wide-dictionary.csv",
                "responses.fhir.json",
            )
        ]

    compare(client, cohort, paths)


def test_management_pages_and_reports_do_not_query_per_patient(
    client: FlaskClient, make_user: Any, cohort: Cohort
) -> None:
    make_user("johtaja", "management")
    staff_login(client, "johtaja")

    def paths() -> list[str]:
        return [
            path
            for pilot in PILOTS
            for path in (f"/management/?pilot={pilot}", f"/management/{pilot}/summary.pdf")
        ]

    compare(client, cohort, paths)


def test_cost_effectiveness_section_without_the_adjusted_estimate(
    client: FlaskClient, make_user: Any, enrol_patient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the case-mix regression cannot be fitted (too few persons for the covariates, or
    collinear covariates) the section still shows, with the adjusted INMB as unavailable."""
    from vaikuttavuus.domain import cea

    def unfittable(*args: Any, **kwargs: Any) -> Any:
        raise cea.CEAError("singular design matrix")

    monkeypatch.setattr(cea, "net_benefit_regression", unfittable)
    Cohort(enrol_patient).grow(SMALL)
    make_user("vastaava", "pilot_lead")
    staff_login(client, "vastaava")
    response = client.get("/pilot/bph/?section=cea")
    assert response.status_code == 200
    assert "INMB" in response.get_data(as_text=True)
