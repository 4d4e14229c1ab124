"""What is throttled (HTTP 429) and how: failed logins, wrong current passwords on the password
form and personal-link guesses. The counters are shared by every worker and server
(:mod:`vaikuttavuus.rate_limits`); only failures are counted.

* **Logins** (:class:`LoginAttempt`, OWASP ASVS 2.2.1 soft lockout). Failures count per client
  address (``LOGIN_RATE_LIMIT``), per account *and* address (``LOGIN_ACCOUNT_RATE_LIMIT``) and
  per account from anywhere (``LOGIN_ACCOUNT_TOTAL_LIMIT``, 100 an hour as ASVS asks). Ten
  wrong passwords from one address lock that address out of that account (and a spray over
  many accounts locks the address out), but the right password from another address still
  logs in. The per-account total refuses only browsers that have not logged in to the account
  before: a successful login leaves a signed *device cookie* naming the account (OWASP's
  "device cookies"), so not even an attack from many addresses locks the user out of a browser
  they use.
* **Password changes**: wrong current passwords per user (``PASSWORD_CHANGE_RATE_LIMIT``).
* **Personal links**: unknown, expired and cancelled links (misses) per client address
  (``PATIENT_LINK_MISS_LIMIT``). A valid link is always served, also to an address that is
  throttled: a ward or a home behind one shared address never loses its patients' links.

A refusal is logged every time and audited once per window (the audit trail is append-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db, limiter

DEVICE_COOKIE = "vaikuttavuus_device"
DEVICE_COOKIE_DAYS = 365
DEVICE_ACCOUNTS = 10
"""A shared ward computer remembers this many accounts (the latest ones)."""


def note_breach(
    limit: str,
    identifiers: tuple[str, ...],
    action: str,
    *,
    actor: str | None = None,
    **details: Any,
) -> None:
    """Log a refused request; audit the first refusal of the window and commit it at once.

    The refused request itself is answered 429 and its unit of work rolled back, so the audit
    event is committed here, before anything else of the request has been written.
    """
    from vaikuttavuus.services import audit

    current_app.logger.warning(
        "%s: %s from %s on %s", action, limit, request.remote_addr, request.endpoint
    )
    if not limiter.first_breach(limit, *identifiers):
        return
    audit.record(
        action,
        object_type="rate_limit",
        object_id=limit,
        actor=actor,
        details={"endpoint": request.endpoint, **details},
    )
    db.session.commit()


def too_many_attempts(retry_after: int) -> Response:
    """The 429 page (in the user's language) with a ``Retry-After`` header."""
    from werkzeug.exceptions import TooManyRequests

    # the app's own error page for 429, whatever renders it
    response = current_app.make_response(current_app.handle_http_exception(TooManyRequests()))
    response.headers["Retry-After"] = str(retry_after)
    return response


# -- logins ------------------------------------------------------------------------------------


def account_name(username: str) -> str:
    """The account a login form names: trimmed and in lower case (usernames are matched so)."""
    return username.strip().lower()[:80]


@dataclass(frozen=True)
class LoginAttempt:
    """A login post: the account it names, from which address, from a trusted browser?"""

    account: str
    address: str
    trusted_device: bool

    @classmethod
    def from_request(cls, username: str) -> LoginAttempt:
        account = account_name(username)
        return cls(account, request.remote_addr or "-", trusted_device(account))

    def _limits(self) -> list[tuple[str, tuple[str, ...], bool]]:
        """(limit, identifiers, whether it can refuse this attempt)."""
        cfg = current_app.config
        return [
            (str(cfg["LOGIN_RATE_LIMIT"]), ("login-address", self.address), True),
            (
                str(cfg["LOGIN_ACCOUNT_RATE_LIMIT"]),
                ("login-account-address", self.account, self.address),
                True,
            ),
            (
                str(cfg["LOGIN_ACCOUNT_TOTAL_LIMIT"]),
                ("login-account", self.account),
                not self.trusted_device,
            ),
        ]

    def refusal(self) -> Response | None:
        """The 429 response if a limit that applies is used up (checked before the password,
        so a throttled client learns nothing from it), else None."""
        for limit, identifiers, applies in self._limits():
            if applies and not limiter.allowed(limit, *identifiers):
                note_breach(
                    limit,
                    identifiers,
                    "login_throttled",
                    actor=login_actor(self.account),
                    counter=identifiers[0],
                )
                return too_many_attempts(limiter.retry_after(limit, *identifiers))
        return None

    def failed(self) -> None:
        """Count a failed login in every counter (before the request writes anything)."""
        for limit, identifiers, _applies in self._limits():
            limiter.hit(limit, *identifiers)


def login_actor(username: str) -> str:
    """How the audit trail names who tried to log in: the account if it exists; otherwise a
    keyed hash, since people type passwords into the username field by mistake."""
    from sqlalchemy import func, select

    from vaikuttavuus.models import User
    from vaikuttavuus.security.tokens import keyed_hash

    account = account_name(username)
    exists = db.session.scalar(select(User.id).where(func.lower(User.username) == account))
    if exists is not None:
        return f"login:{account}"
    return f"login:unknown-{keyed_hash(account, 'login-name')[:12]}"


# -- device cookies ----------------------------------------------------------------------------


def device_cookie_name() -> str:
    """``__Host-`` in production: only ever set by this host over HTTPS, for the whole site."""
    return ("__Host-" if current_app.config["PRODUCTION"] else "") + DEVICE_COOKIE


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt="login-device")


def _account_tag(account: str) -> str:
    from vaikuttavuus.security.tokens import keyed_hash

    return keyed_hash(account, "login-device")[:16]


def _device_tags() -> list[str]:
    """The account tags of this browser's device cookie ([] if it is missing, expired or not
    signed by this instance)."""
    raw = request.cookies.get(device_cookie_name())
    if not raw:
        return []
    try:
        tags = _serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 24 * 3600)
    except BadSignature:
        return []
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def trusted_device(account: str) -> bool:
    """Whether this browser has logged in to ``account`` before (its device cookie names the
    account by a keyed hash, never in clear)."""
    return _account_tag(account) in _device_tags()


def remember_device(response: Response, username: str) -> None:
    """After a successful login: add the account to this browser's device cookie."""
    tag = _account_tag(account_name(username))
    others = [t for t in _device_tags() if t != tag]
    tags = [*others[max(len(others) - DEVICE_ACCOUNTS + 1, 0) :], tag]
    response.set_cookie(
        device_cookie_name(),
        _serializer().dumps(tags),
        max_age=DEVICE_COOKIE_DAYS * 24 * 3600,
        path="/",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Strict",
    )
