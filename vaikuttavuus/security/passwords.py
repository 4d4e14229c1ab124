"""Passwords: argon2id hashes with parameters from the app config, and the password policy.

Policy (OWASP ASVS 4.0 2.1, NIST SP 800-63B): at least 12 characters, at most 200, any
characters, **no composition rules**; a password that is easy to guess is refused. "Easy to
guess" is zxcvbn's estimate (Dropbox's password-strength estimator, from PyPI) below score 3
(about 10⁸ guesses): it knows the most common breached passwords, English words and names,
keyboard rows, repeats, sequences, dates and l33t spellings, and here also the user's own name
and a list of words that Finnish and Swedish passwords are built from (``data/common_words.txt``:
*salasana*, the months, the seasons, places, common names …). So ``Password1234``,
``Qwerty123456``, ``Aaaaaaaaaaa1`` and ``Tammikuu2026`` are refused; a passphrase of a few
unrelated words is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
MIN_STRENGTH = 3
"""zxcvbn score (0–4) a password needs: 3 is "safely unguessable" (≈ 10⁸ guesses or more)."""
ESTIMATED_CHARACTERS = 72
"""zxcvbn looks at this many characters (its own limit); a longer password is long enough."""


def _hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=int(current_app.config["ARGON2_TIME_COST"]),
        memory_cost=int(current_app.config["ARGON2_MEMORY_COST"]),
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


@cache
def common_words() -> tuple[str, ...]:
    """The shipped Finnish and Swedish password words, most common first."""
    text = resources.files("vaikuttavuus.security").joinpath("data/common_words.txt")
    lines = text.read_text(encoding="utf-8").splitlines()
    return tuple(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def password_problem(password: str, context: Iterable[str | None] = ()) -> str | None:
    """Why the password may not be used, or None: ``too_short``, ``too_long`` or
    ``too_common`` (easy to guess, also from ``context``: the username, the person's name).
    The codes are turned into messages by :func:`password_message`."""
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if len(password) > MAX_PASSWORD_LENGTH:
        return "too_long"
    personal = [
        part.lower() for value in context if value for part in value.replace(".", " ").split()
    ]
    estimate = zxcvbn(password[:ESTIMATED_CHARACTERS], user_inputs=[*personal, *common_words()])
    if int(estimate["score"]) < MIN_STRENGTH:
        return "too_common"
    return None


def password_message(code: str) -> str:
    """The policy problem as a message in the user's language."""
    from flask_babel import gettext as _

    if code == "too_short":
        return _(
            "Use at least 12 characters. A passphrase of a few unrelated words is easy to "
            "remember and hard to guess."
        )
    if code == "too_long":
        return _("Use at most 200 characters.")
    return _(
        "This password is too easy to guess: it is a common password, or a word or name with "
        "a few digits, a keyboard row or repeated characters. Use a passphrase of a few "
        "unrelated words."
    )
