"""Staff accounts: creation, authentication and password changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from vaikuttavuus.database import AnySession
from vaikuttavuus.models import Pilot, Role, User, new_session_nonce
from vaikuttavuus.security.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)

ROLES = tuple(role.value for role in Role)

# Verifying against a fixed hash when the user is unknown keeps the timing alike, so the
# response does not reveal which usernames exist.
_DUMMY_HASH: dict[str, str] = {}


PROBLEMS = {
    "too_short": "the password is too short: use at least 12 characters",
    "too_long": "the password is too long: use at most 200 characters",
    "too_common": (
        "the password is too easy to guess (a common password, or a word or name with a few "
        "digits, a keyboard row or repeated characters): use a passphrase of a few unrelated "
        "words"
    ),
}
"""The password policy's problems as the command line shows them (the web has translations:
:func:`vaikuttavuus.security.passwords.password_message`)."""


class UserError(ValueError):
    """A user could not be created or changed; ``code`` names the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    reason: str | None  # None on success; "invalid" or "inactive"


def create_user(
    session: AnySession,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    email: str | None = None,
    pilot_codes: tuple[str, ...] = (),
    locale: str | None = None,
    check_strength: bool = True,
) -> User:
    if role not in ROLES:
        raise UserError("role", f"unknown role '{role}'; one of {', '.join(ROLES)}")
    username = username.strip()
    if not username:
        raise UserError("username", "the username is empty")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise UserError("exists", f"user '{username}' already exists")
    if check_strength and (
        problem := password_problem(password, (username, display_name, email))
    ) is not None:
        raise UserError(problem, PROBLEMS[problem])
    pilots = _pilots(session, pilot_codes)
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        role=role,
        password_hash=hash_password(password),
        locale=locale,
        pilots=pilots,
        password_changed_at=datetime.now(UTC),
    )
    session.add(user)
    session.flush()
    return user


def _pilots(session: AnySession, codes: tuple[str, ...]) -> list[Pilot]:
    pilots = list(session.scalars(select(Pilot).where(Pilot.code.in_(codes))))
    unknown = set(codes) - {p.code for p in pilots}
    if unknown:
        raise UserError("pilot", f"unknown pilot(s): {', '.join(sorted(unknown))}")
    return pilots


PILOT_ROLES = frozenset({Role.CLINICIAN.value, Role.PILOT_LEAD.value})
"""Roles that see patients only in the pilots they are given."""


def lacks_pilots(user: User) -> bool:
    """A clinician or pilot lead with no pilot sees no patient at all."""
    return user.role in PILOT_ROLES and not user.pilots


def update_user(
    session: AnySession,
    user: User,
    *,
    role: str,
    pilot_codes: tuple[str, ...],
    display_name: str,
    email: str | None,
) -> dict[str, list[object]]:
    """Change a user's role, pilots, name and e-mail; returns what changed as
    ``{field: [before, after]}`` (for the audit trail)."""
    if role not in ROLES:
        raise UserError("role", f"unknown role '{role}'; one of {', '.join(ROLES)}")
    pilots = _pilots(session, tuple(pilot_codes)) if role in PILOT_ROLES else []
    before = {
        "role": user.role,
        "pilots": sorted(p.code for p in user.pilots),
        "display_name": user.display_name,
        "email": user.email,
    }
    user.role = role
    user.pilots = pilots
    user.display_name = display_name or user.username
    user.email = email or None
    after = {
        "role": user.role,
        "pilots": sorted(p.code for p in pilots),
        "display_name": user.display_name,
        "email": user.email,
    }
    if before["role"] != after["role"]:
        user.session_nonce = new_session_nonce()  # a new role: sign in again
    session.flush()
    return {key: [before[key], after[key]] for key in before if before[key] != after[key]}


def reset_password(user: User, password: str) -> None:
    """An administrator sets a temporary password: the user is logged out everywhere and must
    choose their own password at the next login (``password_changed_at`` is cleared)."""
    set_password(user, password)
    user.password_changed_at = None


def must_choose_password(user: User) -> bool:
    """The password was set by an administrator (a reset): the user must replace it."""
    return user.password_changed_at is None


def set_password(
    user: User,
    password: str,
    *,
    check_strength: bool = True,
    context: tuple[str | None, ...] = (),
) -> None:
    """A new password (checked against the policy unless told not to: the demo's random
    passwords); logs the user out everywhere."""
    context = (user.username, user.display_name, user.email, *context)
    if check_strength and (problem := password_problem(password, context)) is not None:
        raise UserError(problem, PROBLEMS[problem])
    user.password_hash = hash_password(password)
    user.password_changed_at = datetime.now(UTC)
    user.session_nonce = new_session_nonce()  # log out every other session


def authenticate(session: AnySession, username: str, password: str) -> LoginResult:
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        if "hash" not in _DUMMY_HASH:
            _DUMMY_HASH["hash"] = hash_password("not-a-real-password")
        verify_password(_DUMMY_HASH["hash"], password)
        return LoginResult(None, "invalid")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        return LoginResult(None, "invalid")
    if not user.active:
        return LoginResult(None, "inactive")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.last_login_at = datetime.now(UTC)
    return LoginResult(user, None)
