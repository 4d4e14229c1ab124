"""Personal links: token entropy, only a hash at rest (no token in any table or log), unknown
and dead links that look alike, and guessing throttled (429), logged and audited."""

from __future__ import annotations

import logging
import math
import re
import string
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import String, Text, func, inspect, select, text

from tests.conftest import FORM_TOKEN_FIELD
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, AuditEvent, Invitation, TimePoint
from vaikuttavuus.security import tokens
from vaikuttavuus.security.tokens import token_hash
from vaikuttavuus.services import patient_flow

URLSAFE = set(string.ascii_letters + string.digits + "-_")


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


# -- entropy -------------------------------------------------------------------------------------


def test_tokens_come_from_secrets_with_at_least_128_bits(
    app: Flask, monkeypatch: pytest.MonkeyPatch, enrol_patient: Any, patient_link: Any
) -> None:
    calls: list[int] = []
    real = tokens.secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        assert nbytes is not None
        calls.append(nbytes)
        return real(nbytes)

    monkeypatch.setattr(tokens.secrets, "token_urlsafe", spy)
    token = patient_link(enrol_patient(index_offset_days=10))
    assert calls and calls[-1] * 8 >= 128  # bytes drawn from the OS CSPRNG
    assert set(token) <= URLSAFE
    assert len(token) * 6 >= 128


def test_token_characters_are_uniform_and_never_repeat() -> None:
    sample = [tokens.new_token() for _ in range(3000)]
    assert len(set(sample)) == len(sample)
    assert {len(t) for t in sample} == {math.ceil(tokens.TOKEN_BYTES * 8 / 6)}
    # Every character but the last (which carries fewer bits) is uniform over the 64 symbols.
    counts = Counter(ch for t in sample for ch in t[:-1])
    assert set(counts) == URLSAFE
    expected = sum(counts.values()) / 64
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 140  # 63 degrees of freedom: p < 1e-7 above this bound


# -- hash at rest, nothing in logs ---------------------------------------------------------------


def _text_columns() -> list[tuple[str, str]]:
    inspector = inspect(db.engine)
    columns = []
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if isinstance(column["type"], String | Text) or "JSON" in str(column["type"]).upper():
                columns.append((table, column["name"]))
    return columns


def _tables_containing(needle: str) -> list[str]:
    found = []
    for table, column in _text_columns():
        cast = f'CAST("{column}" AS TEXT)'
        count = db.session.scalar(
            text(f'SELECT COUNT(*) FROM "{table}" WHERE {cast} LIKE :pattern'),
            {"pattern": f"%{needle}%"},
        )
        if count:
            found.append(f"{table}.{column}")
    return found


def test_no_token_in_any_table_or_log(
    app: Flask,
    client: FlaskClient,
    enrol_patient: Any,
    patient_link: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.web.test_walking_skeleton import IPSS_ANSWERS, answer_pages

    caplog.set_level(logging.DEBUG)
    enrolment = enrol_patient(index_offset_days=10)
    token = patient_link(enrolment)
    other = patient_link(enrolment)  # a reminder's second link to the same invitation
    review = answer_pages(client, token, IPSS_ANSWERS)
    form_token = FORM_TOKEN_FIELD.search(review)
    assert form_token
    sent = client.post(f"/r/{token}/submit", data={"form_token": form_token.group(1)})
    assert sent.status_code == 302
    assert client.get(f"/r/{other}").status_code == 200
    client.get(f"/r/{token}x")  # a miss is logged, without the token
    db.session.expire_all()

    assert _tables_containing(token_hash(token)) == ["access_tokens.token_hash"]
    for secret in (token, other, token[:16], other[-16:]):
        assert _tables_containing(secret) == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "invalid patient link" in logged
    assert token[:16] not in logged and other[:16] not in logged


# -- dead links look like unknown ones -----------------------------------------------------------


def _invitation(enrolment: Any, time_point: str = "baseline") -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == time_point)
    )
    assert invitation is not None
    return invitation


def _page(client: FlaskClient, token: str, suffix: str = "") -> tuple[int, str]:
    response = client.get(f"/r/{token}{suffix}")
    return response.status_code, response.get_data(as_text=True).replace(token, "TOKEN")


def test_unknown_expired_cancelled_and_revoked_links_look_alike(
    app: Flask, client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    app.config["PATIENT_LINK_MISS_LIMIT"] = "1000 per minute"  # many misses on purpose
    now = datetime.now(UTC)
    dead: dict[str, str] = {}

    expired = enrol_patient(index_offset_days=10)
    dead["expired"] = patient_link(expired)
    invitation = _invitation(expired)
    invitation.closes_on = invitation.opens_on = invitation.opens_on.replace(year=2020)

    cancelled = enrol_patient(index_offset_days=10)
    dead["cancelled"] = patient_link(cancelled)
    _invitation(cancelled).status = "cancelled"

    revoked = enrol_patient(index_offset_days=10)
    dead["revoked"] = patient_link(revoked)
    access = db.session.scalar(
        select(AccessToken).where(AccessToken.token_hash == token_hash(dead["revoked"]))
    )
    assert access is not None
    access.revoked_at = now

    withdrawn = enrol_patient(index_offset_days=10)
    dead["withdrawn"] = patient_link(withdrawn)
    withdrawn.status, withdrawn.withdrawn_at = "withdrawn", now

    erased = enrol_patient(index_offset_days=10)
    dead["erased"] = patient_link(erased)
    erased.person.erased_at = now
    db.session.commit()

    live = patient_link(enrol_patient(index_offset_days=10))
    unknown = tokens.new_token()
    for suffix in ("", "/1", "/review", "/opt-out"):
        reference = _page(client, unknown, suffix)
        assert reference[0] == 404
        for reason, token in dead.items():
            assert _page(client, token, suffix) == reference, f"{reason} {suffix}"
    assert _page(client, live)[0] == 200


# -- guessing is throttled -----------------------------------------------------------------------


def _throttle_events() -> list[AuditEvent]:
    return list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.action == "patient_link_throttled"))
    )


def test_guessing_is_throttled_logged_and_audited_once(
    app: Flask,
    client: FlaskClient,
    enrol_patient: Any,
    patient_link: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app.config["PATIENT_LINK_MISS_LIMIT"] = "5 per 10 minutes"
    live = patient_link(enrol_patient(index_offset_days=10))
    guesses = [tokens.new_token() for _ in range(12)]
    with caplog.at_level(logging.WARNING):
        statuses = [client.get(f"/r/{guess}").status_code for guess in guesses]
    assert statuses == [404] * 5 + [429] * 7
    # A valid link is served even to the throttled address (a ward or a home behind one
    # shared address keeps its links; only misses are counted and refused) …
    assert client.get(f"/r/{live}").status_code == 200
    assert client.get(f"/r/{live}/1").status_code == 200
    # … while its next miss is still refused, and another address is not affected.
    assert client.get(f"/r/{tokens.new_token()}").status_code == 429
    other = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get(f"/r/{tokens.new_token()}", environ_base=other).status_code == 404
    assert any("patient_link_throttled" in r.getMessage() for r in caplog.records)
    db.session.expire_all()
    events = _throttle_events()
    assert len(events) == 1
    assert events[0].ip_address == "127.0.0.1"
    serialised = repr(events[0].details) + (events[0].object_id or "")
    assert not any(guess[:12] in serialised for guess in guesses)


def test_throttle_window_is_audited_again_after_reset(app: Flask, client: FlaskClient) -> None:
    from vaikuttavuus.extensions import limiter

    app.config["PATIENT_LINK_MISS_LIMIT"] = "2 per 10 minutes"
    for _ in range(4):
        client.get(f"/r/{tokens.new_token()}")
    limiter.reset()  # the window ends
    for _ in range(4):
        client.get(f"/r/{tokens.new_token()}")
    db.session.expire_all()
    assert len(_throttle_events()) == 2


def test_using_a_valid_link_is_never_throttled(
    app: Flask, client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    app.config["PATIENT_LINK_MISS_LIMIT"] = "3 per 10 minutes"
    token = patient_link(enrol_patient(index_offset_days=10))
    statuses = {client.get(f"/r/{token}{s}").status_code for s in ("", "/1", "/2") * 8}
    assert statuses == {200}
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_patient_pages_send_no_referrer_and_are_not_indexed(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    token = patient_link(enrol_patient(index_offset_days=10))
    for suffix in ("", "/1"):
        html = client.get(f"/r/{token}{suffix}").get_data(as_text=True)
        assert re.search(r'<meta name="referrer" content="no-referrer">', html)
        assert 'name="robots" content="noindex' in html


def test_resolve_treats_expiry_by_date(app: Flask, enrol_patient: Any, patient_link: Any) -> None:
    """The link dies the day after the window closes even if no job has marked it expired."""
    enrolment = enrol_patient(index_offset_days=10)
    token = patient_link(enrolment)
    invitation = _invitation(enrolment)
    after = invitation.closes_on.toordinal() + 1
    from datetime import date

    state = patient_flow.resolve(db.session, token, today=date.fromordinal(after))
    assert state.problem == "invalid" and state.invitation is None
    state = patient_flow.resolve(db.session, token, today=invitation.closes_on)
    assert state.usable
