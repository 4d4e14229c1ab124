"""A personal identity code typed by staff is stored nowhere in clear.

Staff type text into the patient search, a measurement correction reason, a withdrawal or an
erasure reason and the login form; any of them may receive a patient's identity code. Through
the real server (``vaikuttavuus serve``: gunicorn with its access log) the code must end up in
no column of any table — the append-only audit log included — and in no line of the server's
log. The audit trail records facts (a search was made, a reason was given), and as a safeguard
masks anything shaped like a code whatever its callers pass.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask import Flask
from gunicorn.config import Config
from sqlalchemy import inspect, select, text

from tests.conftest import CSRF_FIELD
from tests.reliability.conftest import Server
from vaikuttavuus.domain import identity
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, ClinicalMeasurement, Enrolment
from vaikuttavuus.server import RedactingLogger
from vaikuttavuus.services import audit
from vaikuttavuus.services.measurements import MeasurementEntry, add_measurement

# Valid synthetic codes (individual numbers 900–999 are never a real person's permanent code),
# with the century signs of the 1900s and 2000s.
CODE = identity.synthetic_identity_code(date(1948, 6, 21), "male", random.Random(3))
OTHER_CODE = identity.synthetic_identity_code(
    date(2003, 1, 9), "female", random.Random(4), century_sign="A"
)
DAY = (date.today() - timedelta(days=3)).isoformat()


def test_the_codes_are_valid_synthetic_codes() -> None:
    for code in (CODE, OTHER_CODE):
        assert identity.validate(code) is None  # the check character included
        assert identity.is_synthetic(code)
        assert identity.contains_identity_code(f"hetu {code}.")
        assert code not in identity.mask_identity_codes(f"hetu {code}.")


def variants(code: str) -> set[str]:
    """The forms a code could be stored or logged in."""
    return {code, code.lower(), quote(code), quote(code, safe="")}


def found_in_database(codes: list[str]) -> list[str]:
    """Every place (table.column) where any form of a code occurs, in every table."""
    db.session.remove()
    engine = db.engine
    places = []
    wanted = set().union(*(variants(c) for c in codes))
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            result = connection.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    shown = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if any(form in shown for form in wanted):
                        places.append(f"{table}.{column}")
    return sorted(set(places))


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=30)
    assert page.status_code == 200, (url, page.status_code)
    match = CSRF_FIELD.search(page.text)
    assert match, url
    return match.group(1)


def _login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    token = _csrf(session, f"{base}/auth/login")
    response = session.post(
        f"{base}/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]
    return session


@pytest.fixture
def server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Server]:
    instance = tmp_path / "instance"
    instance.mkdir()
    served = Server(
        database_url=database_url, instance=instance, log=tmp_path / "server.log", workers=1
    )
    try:
        yield served
    finally:
        served.stop()
        db.session.remove()


def test_identity_codes_typed_by_staff_are_stored_and_logged_nowhere(
    app: Flask, make_user: Any, enrol_patient: Any, server: Server
) -> None:
    from tests.conftest import PASSWORD

    corrected = enrol_patient(pilot="bph", arm="operating_room")
    withdrawn = enrol_patient(pilot="bph", arm="operating_room")
    erased = enrol_patient(pilot="bph", arm="operating_room")
    measurement = add_measurement(
        db.session, corrected, MeasurementEntry("qmax", "12,5", DAY), user=None
    )
    db.session.commit()
    ids = {
        "measurement": measurement.id,
        "corrected": corrected.person.pseudonym,
        "withdrawn": (withdrawn.id, withdrawn.person.pseudonym),
        "erased": erased.person.pseudonym,
    }
    make_user("hetu_kliinikko", "clinician", pilots=("bph",))
    make_user("hetu_vetaja", "pilot_lead", pilots=("bph",))
    before = found_in_database([CODE, OTHER_CODE])
    assert before == []

    server.start()
    base = server.url
    clinician = _login(base, "hetu_kliinikko", PASSWORD)
    # 1. The patient search, with the search page as the referrer of the next request.
    search = f"{base}/clinician/bph/?q={quote(CODE)}"
    assert clinician.get(search, timeout=30).status_code == 200
    assert clinician.get(f"{base}/clinician/bph/", headers={"Referer": search}, timeout=30).ok
    # 2. A measurement correction reason.
    correct = f"{base}/measurements/bph/{ids['corrected']}/{ids['measurement']}/correct"
    response = clinician.post(
        correct,
        data={
            "value": "13,5",
            "measured_on": DAY,
            "reason": f"Väärä potilas ({CODE}), korjattu",
            "csrf_token": _csrf(clinician, correct),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:1000]
    # 3. A withdrawal reason and an erasure reason.
    lead = _login(base, "hetu_vetaja", PASSWORD)
    enrolment_id, pseudonym = ids["withdrawn"]
    withdraw = f"{base}/privacy/{pseudonym}/withdraw/bph"
    response = lead.post(
        withdraw,
        data={
            "reason": f"Pyysi puhelimessa, hetu {OTHER_CODE}",
            "confirm": pseudonym,
            "csrf_token": _csrf(lead, withdraw),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:1000]
    erase = f"{base}/privacy/{ids['erased']}/erase"
    response = lead.post(
        erase,
        data={"reason": CODE, "confirm": ids["erased"], "csrf_token": _csrf(lead, erase)},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:1000]
    # 4. A code typed as the username of a failed login.
    anonymous = requests.Session()
    failed = anonymous.post(
        f"{base}/auth/login",
        data={
            "username": CODE,
            "password": "x",
            "csrf_token": _csrf(anonymous, f"{base}/auth/login"),
        },
        timeout=30,
    )
    assert failed.status_code == 200
    server.stop()

    assert found_in_database([CODE, OTHER_CODE]) == []
    log = server.log_text()
    assert "GET /clinician/bph/ HTTP/1.1" in log  # the access log was captured, path only
    assert "?q=" not in log
    assert [form for c in (CODE, OTHER_CODE) for form in variants(c) if form in log] == []

    # Each action happened, and the trail holds what happened, not what was typed.
    events: dict[str, AuditEvent] = {}
    for event in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        events.setdefault(event.action, event)  # the first of each kind
    assert events["view_patient_list"].details["search"] is True
    assert events["view_patient_list"].details["query_length"] == len(CODE)
    assert events["view_patient_list"].details["matches"] == 0
    assert "query" not in events["view_patient_list"].details
    assert events["correct_measurement"].details["reason_given"] is True
    assert "reason" not in events["correct_measurement"].details
    assert events["withdraw_enrolment"].details["reason_given"] is True
    assert "reason" not in events["withdraw_enrolment"].details
    assert events["erase_person"].details["reason_given"] is True
    assert "reason" not in events["erase_person"].details
    # No account has that name: a keyed hash of what was typed, never the text itself.
    assert events["login_failed"].actor.startswith("login:unknown-")
    # The reasons are kept where they belong (and where an erasure reaches them), masked.
    old = db.session.get(ClinicalMeasurement, ids["measurement"])
    assert old is not None and old.correction_reason == "Väärä potilas (******-****), korjattu"
    enrolment = db.session.get(Enrolment, enrolment_id)
    assert enrolment is not None
    assert enrolment.withdrawal_reason == "Pyysi puhelimessa, hetu ***********"


def test_audit_events_mask_identity_codes_whatever_the_caller_passes(app: Flask) -> None:
    audit.record(
        "test_event",
        object_id=f"x {CODE}",
        actor=f"login:{CODE}",
        details={"note": f"hetu {CODE}", "nested": [{"deep": OTHER_CODE}, 3], CODE: True},
    )
    db.session.commit()
    db.session.expire_all()
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "test_event"))
    assert event is not None
    stored = f"{event.actor} {event.object_id} {event.details}"
    assert CODE not in stored and OTHER_CODE not in stored
    assert event.details["note"] == "hetu ******-****"
    assert event.details["nested"] == [{"deep": "***********"}, 3]
    assert event.object_id == "x ******-****"


def _access_line(path: str, query: str, referer: str) -> str:
    """The access-log line gunicorn writes for one request, through the app's logger."""
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"{path}?{query}" if query else path,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "test",
    }

    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    request = SimpleNamespace(headers=[("REFERER", referer)])
    atoms = logger.atoms(response, request, environ, timedelta(seconds=0))
    return logger.cfg.access_log_format % logger.atoms_wrapper_class(atoms)


def test_the_access_log_shows_paths_without_query_strings_tokens_or_codes() -> None:
    token = "A" * 32
    line = _access_line(
        "/clinician/bph/", f"q={quote(CODE)}&page=2", f"http://x/r/{token}/1?q={CODE}"
    )
    assert '"GET /clinician/bph/ HTTP/1.1"' in line
    assert '"http://x/r/…/1"' in line
    assert "q=" not in line and token not in line and CODE not in line
    # A code in the path itself (a mistyped address) is masked as well.
    assert CODE not in _access_line(f"/privacy/{CODE}", "", "-")
    assert re.search(r"/privacy/\*{6}-\*{4}", _access_line(f"/privacy/{CODE}", "", "-"))
