"""Authentication and sessions: password hashes, failures that look alike, throttling, session
rotation and expiry, cookie flags, security headers and the production start-up checks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select

from tests.conftest import PASSWORD, csrf_token, login
from tests.conftest import test_config as make_config
from tests.support.crawl import security_header_problems
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus import ConfigurationError, create_app
from vaikuttavuus.config import defaults as config_defaults
from vaikuttavuus.extensions import db, limiter
from vaikuttavuus.models import AuditEvent, User

SESSION_COOKIE = "vaikuttavuus_session"
STRONG_KEY = "k" * 16 + "-Strong-Random-Key-For-Tests-0123456789"


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


def _audit_count(action: str) -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )
        or 0
    )


def _post_login(client: FlaskClient, username: str, password: str, **kwargs: Any) -> Any:
    token = csrf_token(client, "/auth/login")
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        **kwargs,
    )


def _is_logged_in(client: FlaskClient) -> bool:
    response = client.get("/auth/password")
    return response.status_code == 200


# -- passwords -----------------------------------------------------------------------------------


def test_password_hashes_are_argon2id_with_configured_cost(app: Flask, make_user: Any) -> None:
    user = make_user("hash_check", "clinician")
    assert user.password_hash.startswith("$argon2id$")
    assert "m=8192,t=1" in user.password_hash  # the test configuration's cost
    assert PASSWORD not in user.password_hash
    other = make_user("hash_check2", "clinician")
    assert other.password_hash != user.password_hash  # salted
    defaults = config_defaults(Path(app.instance_path))
    assert defaults["ARGON2_TIME_COST"] >= 2
    assert defaults["ARGON2_MEMORY_COST"] >= 19456  # OWASP minimum for argon2id


# -- generic failures ----------------------------------------------------------------------------


def _normalised(html: str, username: str) -> str:
    html = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', 'name="csrf_token"', html)
    return html.replace(username, "USERNAME")


def test_login_failures_look_alike(client: FlaskClient, make_user: Any) -> None:
    make_user("active_user", "clinician")
    inactive = make_user("inactive_user", "clinician")
    inactive.active = False
    db.session.commit()

    unknown = _post_login(client, "no_such_user", PASSWORD)
    wrong = _post_login(client, "active_user", PASSWORD + "x")
    disabled = _post_login(client, "inactive_user", PASSWORD)

    assert unknown.status_code == wrong.status_code == disabled.status_code == 200
    bodies = {
        _normalised(unknown.get_data(as_text=True), "no_such_user"),
        _normalised(wrong.get_data(as_text=True), "active_user"),
        _normalised(disabled.get_data(as_text=True), "inactive_user"),
    }
    assert len(bodies) == 1
    assert "flash-error" in bodies.pop()
    assert not _is_logged_in(client)
    assert _audit_count("login_failed") == 3


# -- throttling ----------------------------------------------------------------------------------


def test_failed_logins_are_throttled_and_logged(
    app: Flask, client: FlaskClient, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    make_user("target", "clinician")
    for _ in range(3):
        assert _post_login(client, "target", "wrong-password").status_code == 200
    with caplog.at_level(logging.WARNING):
        refused = _post_login(client, "target", "wrong-password")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers or "X-RateLimit-Reset" in refused.headers
    assert 'class="' in refused.get_data(as_text=True)  # the error page, not a bare body
    assert any("login_throttled" in r.getMessage() for r in caplog.records)
    # Even the right password is refused while throttled, and the breach is audited once.
    assert _post_login(client, "target", PASSWORD).status_code == 429
    for _ in range(3):
        _post_login(client, "other", "wrong-password")
    assert not _is_logged_in(client)
    assert _audit_count("login_throttled") == 1
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "login_throttled"))
    assert event is not None
    assert event.ip_address == "127.0.0.1"


def _post_from(client: FlaskClient, address: str, username: str, password: str) -> Any:
    token = csrf_token(client, "/auth/login")
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_elsewhere(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    """ASVS 2.2.1 soft lockout: the audit locked any user out for ten minutes with ten wrong
    passwords from anywhere. Now the attacker's address is locked out of the account; the
    user, from another address, logs in with the right password."""
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"  # only the per-account counters here
    make_user("victim", "clinician")
    attacker = [_post_from(client, "10.0.0.66", "Victim", f"guess-{n}") for n in range(11)]
    assert [r.status_code for r in attacker] == [200] * 10 + [429]
    assert _post_from(client, "10.0.0.66", "victim", PASSWORD).status_code == 429
    user = app.test_client()
    assert _post_from(user, "10.0.0.7", "victim", PASSWORD).status_code == 302
    # Another account from the attacker's address is not affected.
    assert _post_from(client, "10.0.0.66", "someone_else", "guess").status_code == 200


def test_an_account_attacked_from_many_addresses_stays_open_to_its_users_browser(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    """At most LOGIN_ACCOUNT_TOTAL_LIMIT failures an hour per account from all addresses
    together (ASVS 2.2.1); over it, only browsers that logged in to the account before get in
    (the signed device cookie), so a distributed attack still cannot lock the user out."""
    app.config["LOGIN_ACCOUNT_TOTAL_LIMIT"] = "4 per hour"
    make_user("target", "clinician")
    usual = app.test_client()
    assert _post_from(usual, "10.1.0.1", "target", PASSWORD).status_code == 302
    cookie = usual.get_cookie("vaikuttavuus_device")
    assert cookie is not None and "target" not in cookie.value  # a keyed hash, not the name
    usual.post("/auth/logout", data={"csrf_token": csrf_token(usual, "/auth/password")})

    botnet = [_post_from(client, f"10.2.0.{n}", "target", "guess").status_code for n in range(5)]
    assert botnet == [200, 200, 200, 200, 429]
    stranger = app.test_client()
    assert _post_from(stranger, "10.3.0.1", "target", PASSWORD).status_code == 429
    assert _post_from(usual, "10.4.0.1", "target", PASSWORD).status_code == 302
    # A cookie that this instance did not sign counts for nothing.
    forged = app.test_client()
    forged.set_cookie("vaikuttavuus_device", cookie.value[:-4] + "AAAA")
    assert _post_from(forged, "10.5.0.1", "target", PASSWORD).status_code == 429
    assert _audit_count("login_throttled") == 1


def test_throttle_counters_hold_no_username_or_address(app: Flask, client: FlaskClient) -> None:
    from vaikuttavuus.models import ThrottleCounter

    _post_from(client, "10.9.8.7", "Salasana2026!", "x")
    keys = db.session.scalars(select(ThrottleCounter.key)).all()
    assert len(keys) == 3  # address; account and address; account
    assert not [k for k in keys if "10.9.8.7" in k or "salasana" in k.lower()]


def test_successful_logins_do_not_use_up_the_limit(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    make_user("busy_ward", "clinician")
    for _ in range(6):
        assert login(client, "busy_ward").status_code == 302
        token = csrf_token(client, "/auth/password")
        assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302


def test_forwarded_addresses_are_trusted_only_when_configured(
    database_url: str, make_user: Any
) -> None:
    make_user("proxied", "clinician")
    direct = create_app(make_config(database_url, LOGIN_RATE_LIMIT="2 per minute"))
    limiter.reset()
    client = direct.test_client()
    statuses = [
        _post_login(
            client, "proxied", "bad", headers={"X-Forwarded-For": f"192.0.2.{n}"}
        ).status_code
        for n in range(3)
    ]
    # Without TRUSTED_PROXIES a spoofed header does not give a fresh address.
    assert statuses == [200, 200, 429]

    proxied = create_app(
        make_config(database_url, LOGIN_RATE_LIMIT="2 per minute", TRUSTED_PROXIES=1)
    )
    limiter.reset()
    client = proxied.test_client()
    statuses = [
        _post_login(
            client, "proxied", "bad", headers={"X-Forwarded-For": f"192.0.2.{n}"}
        ).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 200]
    with proxied.app_context():
        addresses = set(
            db.session.scalars(
                select(AuditEvent.ip_address).where(AuditEvent.action == "login_failed")
            )
        )
    assert {"192.0.2.0", "192.0.2.1", "192.0.2.2"} <= addresses


# -- sessions ------------------------------------------------------------------------------------


def test_login_starts_a_new_session(client: FlaskClient, make_user: Any) -> None:
    make_user("fixation", "clinician")
    client.get("/auth/login")
    with client.session_transaction() as session:
        session["planted"] = "attacker-chosen"
    before = client.get_cookie(SESSION_COOKIE)
    assert before is not None
    assert login(client, "fixation").status_code == 302
    after = client.get_cookie(SESSION_COOKIE)
    assert after is not None and after.value != before.value
    with client.session_transaction() as session:
        assert "planted" not in session
        assert "login_at" in session
    # The cookie from before the login does not carry the login.
    client.set_cookie(SESSION_COOKIE, before.value)
    assert not _is_logged_in(client)


def test_logout_invalidates_a_copied_session_cookie(client: FlaskClient, make_user: Any) -> None:
    make_user("copied", "clinician")
    assert login(client, "copied").status_code == 302
    stolen = client.get_cookie(SESSION_COOKIE)
    assert stolen is not None
    token = csrf_token(client, "/auth/password")
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    client.set_cookie(SESSION_COOKIE, stolen.value)
    assert not _is_logged_in(client)


def test_password_change_logs_out_other_sessions(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    make_user("two_devices", "clinician")
    other = app.test_client()
    assert login(client, "two_devices").status_code == 302
    assert login(other, "two_devices").status_code == 302
    token = csrf_token(client, "/auth/password")
    changed = client.post(
        "/auth/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "Uusi-Salasana-2027",
            "confirm": "Uusi-Salasana-2027",
        },
    )
    assert changed.status_code == 302
    assert _is_logged_in(client)
    assert not _is_logged_in(other)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, float]]:
    """Shift the clock of the signed session cookie (idle expiry) by ``offset`` seconds."""
    state = {"offset": 0.0}
    monkeypatch.setattr(
        TimestampSigner, "get_timestamp", lambda self: int(time.time() + state["offset"])
    )
    yield state


def test_idle_session_expires(
    app: Flask, client: FlaskClient, make_user: Any, clock: dict[str, float]
) -> None:
    idle = app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    assert idle <= 30 * 60
    make_user("idle", "clinician")
    assert login(client, "idle").status_code == 302
    # Activity just inside the idle limit keeps the session alive (sliding expiry) …
    clock["offset"] = idle - 60
    assert client.get("/clinician/").status_code == 200
    clock["offset"] = 2 * idle - 120
    assert client.get("/clinician/").status_code == 200
    # … a longer pause ends it.
    clock["offset"] = 3 * idle
    response = client.get("/clinician/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_absolute_session_lifetime(app: Flask, client: FlaskClient, make_user: Any) -> None:
    limit: timedelta = app.config["SESSION_ABSOLUTE_LIFETIME"]
    assert limit <= timedelta(hours=12)
    make_user("marathon", "clinician")
    assert login(client, "marathon").status_code == 302
    with client.session_transaction() as session:
        session["login_at"] = (datetime.now(UTC) - limit + timedelta(minutes=5)).isoformat()
    assert client.get("/clinician/").status_code == 200
    with client.session_transaction() as session:
        session["login_at"] = (datetime.now(UTC) - limit - timedelta(minutes=1)).isoformat()
    response = client.get("/clinician/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
    assert "next=/clinician/" in response.headers["Location"]
    assert not _is_logged_in(client)


# -- cookies and headers -------------------------------------------------------------------------


def _set_cookie_header(response: Any, name: str) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert headers, f"no {name} cookie set"
    return headers[-1]


def test_session_cookie_flags_in_development(client: FlaskClient, make_user: Any) -> None:
    make_user("cookie_dev", "clinician")
    cookie = _set_cookie_header(login(client, "cookie_dev"), SESSION_COOKIE)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on a developer's machine


@pytest.fixture
def production_app(database_url: str) -> Flask:
    return create_app(
        make_config(
            database_url,
            PRODUCTION=True,
            SECRET_KEY=STRONG_KEY,
            PSEUDONYM_KEY=STRONG_KEY[::-1],
            TRUSTED_PROXIES=1,
        )
    )


def test_production_cookies_are_secure_and_https_is_enforced(
    production_app: Flask, make_user: Any
) -> None:
    make_user("cookie_prod", "clinician")
    plain = production_app.test_client()
    redirect = plain.get("/auth/login")
    assert redirect.status_code in (301, 302)
    assert redirect.headers["Location"].startswith("https://")

    client = production_app.test_client()
    page = client.get("/auth/login", base_url="https://localhost")
    assert page.status_code == 200
    hsts = page.headers.get("Strict-Transport-Security", "")
    assert "max-age=" in hsts
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 180 * 24 * 3600  # type: ignore[union-attr]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    logged_in = client.post(
        "/auth/login",
        data={"username": "cookie_prod", "password": PASSWORD, "csrf_token": token.group(1)},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/auth/login"},  # same-origin referrer policy
    )
    assert logged_in.status_code == 302
    # ASVS 3.4.4: the __Host- prefix (Secure, this host only, the whole site).
    cookie = _set_cookie_header(logged_in, "__Host-" + SESSION_COOKIE)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/;" in cookie + ";" and "Domain" not in cookie
    assert not logged_in.headers.get("Set-Cookie", "").startswith(SESSION_COOKIE)
    device = _set_cookie_header(logged_in, "__Host-vaikuttavuus_device")
    assert "Secure" in device and "HttpOnly" in device and "Domain" not in device
    assert client.get("/auth/password", base_url="https://localhost").status_code == 200


def test_tls_terminated_at_a_trusted_proxy(production_app: Flask) -> None:
    client = production_app.test_client()  # http between the proxy and the app
    page = client.get("/auth/login", headers={"X-Forwarded-Proto": "https"})
    assert page.status_code == 200
    assert "Strict-Transport-Security" in page.headers


def test_production_refuses_to_start_without_strong_keys(database_url: str) -> None:
    base = make_config(database_url, PRODUCTION=True)
    for missing in ("SECRET_KEY", "PSEUDONYM_KEY"):
        config = dict(base, SECRET_KEY=STRONG_KEY, PSEUDONYM_KEY=STRONG_KEY[::-1])
        config[missing] = None
        with pytest.raises(ConfigurationError, match=missing):
            create_app(config)
    with pytest.raises(ConfigurationError, match="too short"):
        create_app(dict(base, SECRET_KEY="short", PSEUDONYM_KEY=STRONG_KEY))
    app = create_app(dict(base, SECRET_KEY=STRONG_KEY, PSEUDONYM_KEY=STRONG_KEY[::-1]))
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_instance_config_without_keys_refuses_in_production(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real start-up path (instance folder and environment, no test overrides)."""
    (tmp_path / "config.py").write_text("PRODUCTION = True\n", encoding="utf-8")
    monkeypatch.setenv("VAIKUTTAVUUS_INSTANCE", str(tmp_path))
    for key in ("SECRET_KEY", "PSEUDONYM_KEY"):
        monkeypatch.delenv(key, raising=False)
        monkeypatch.delenv(f"VAIKUTTAVUUS_{key}", raising=False)
    with pytest.raises(ConfigurationError):
        create_app()


def test_security_headers_on_every_page_type(
    app: Flask,
    client: FlaskClient,
    make_user: Any,
    enrol_patient: Any,
    patient_link: Any,
) -> None:
    app.config["PATIENT_LINK_MISS_LIMIT"] = "2 per minute"
    token = patient_link(enrol_patient(index_offset_days=10))
    pages: list[tuple[str, Any]] = []
    for url in ("/auth/login", "/no-such-page", f"/r/{token}", f"/r/{token}/1"):
        pages.append((url, client.get(url)))
    pages.append(("review", client.get(f"/r/{token}/review")))
    pages.append(("POST /auth/login without token", client.post("/auth/login", data={})))
    for n in range(3):
        pages.append((f"unknown link {n}", client.get(f"/r/unknown-token-{n}")))
    assert pages[-1][1].status_code == 429
    for role, start in (
        ("clinician", "/clinician/bph/"),
        ("pilot_lead", "/pilot/bph/"),
        ("management", "/management/"),
        ("admin", "/admin/users"),
    ):
        staff = app.test_client()
        make_user(f"headers_{role}", role)
        assert login(staff, f"headers_{role}").status_code == 302
        pages.append((start, staff.get(start)))
        forbidden = "/admin/audit" if role != "admin" else "/pilot/"
        pages.append((f"{role} forbidden", staff.get(forbidden)))
    statuses = {url: response.status_code for url, response in pages}
    assert {200, 400, 403, 404, 429} <= set(statuses.values()), statuses
    problems = [p for url, response in pages for p in security_header_problems(url, response)]
    assert problems == []


def test_users_table_never_holds_a_plain_password(app: Flask, make_user: Any) -> None:
    make_user("plain_check", "admin")
    for value in db.session.scalars(select(User.password_hash)):
        assert PASSWORD not in value
