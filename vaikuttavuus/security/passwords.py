"""argon2id password hashing with parameters from the app config."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 12


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


def password_problem(password: str) -> str | None:
    """A reason the password is too weak, or None. (Messages are translated by the caller.)"""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if password.lower() == password or password.upper() == password:
        return "needs_mixed_case"
    if not any(ch.isdigit() for ch in password):
        return "needs_digit"
    return None
