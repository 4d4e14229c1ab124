"""Patient-link tokens and keyed hashes.

A token is 192 bits from :mod:`secrets` (URL-safe text); only its SHA-256 hash is stored.
Identity codes are hashed with HMAC-SHA256 under the instance's pseudonym key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app

TOKEN_BYTES = 24  # 192 bits


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def pseudonym_key() -> bytes:
    return str(current_app.config["PSEUDONYM_KEY"]).encode("utf-8")


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under the pseudonym key, separated by ``purpose``."""
    key = hmac.new(pseudonym_key(), purpose.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def form_token(token_digest: str) -> str:
    """An anti-forgery value for patient forms, bound to the link rather than to a session,
    so a patient who leaves a page open for hours does not lose the answers on it."""
    secret = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(secret, f"patient-form:{token_digest}".encode(), hashlib.sha256).hexdigest()


def form_token_valid(token_digest: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(form_token(token_digest), str(submitted))


def key_fingerprint(key: str | None) -> str | None:
    """A short, one-way fingerprint of a configured key (for comparing instances and backups
    without revealing the key)."""
    if not key:
        return None
    digest = hashlib.sha256(b"vaikuttavuus key fingerprint\x00" + str(key).encode("utf-8"))
    return digest.hexdigest()[:16]
