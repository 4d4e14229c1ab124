"""Configuration defaults (no secrets).

Order of precedence, lowest first: these defaults → ``instance/config.py`` → environment
variables (``DATABASE_URL``, ``SECRET_KEY``, ``PSEUDONYM_KEY``, ``VAIKUTTAVUUS_*``) → the
``test_config`` mapping given to :func:`vaikuttavuus.create_app`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

# Keys that may come from the environment, as they are or prefixed with VAIKUTTAVUUS_.
ENVIRONMENT_KEYS: tuple[str, ...] = (
    "DATABASE_URL",
    "SECRET_KEY",
    "PSEUDONYM_KEY",
    "PUBLIC_BASE_URL",
    "SESSION_COOKIE_SECURE",
    "PRODUCTION",
    "MIN_CELL_SIZE",
    "RATELIMIT_STORAGE_URI",
    "JOB_QUEUE_URL",
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_USE_TLS",
    "MAIL_SENDER",
    "SMS_SENDER",
    "SERVE_WORKERS",
    "SERVE_THREADS",
    "TRUSTED_PROXIES",
)

BOOLEAN_KEYS = frozenset({"SESSION_COOKIE_SECURE", "PRODUCTION", "MAIL_USE_TLS"})
INTEGER_KEYS = frozenset(
    {"MIN_CELL_SIZE", "MAIL_PORT", "SERVE_WORKERS", "SERVE_THREADS", "TRUSTED_PROXIES"}
)


def defaults(instance_path: Path) -> dict[str, Any]:
    """The built-in defaults; the SQLite database lives in the instance folder."""
    return {
        # Production mode refuses to start without keys and sends Secure cookies.
        "PRODUCTION": False,
        "DATABASE_URL": f"sqlite:///{instance_path / 'vaikuttavuus.sqlite3'}",
        "SECRET_KEY": None,
        "PSEUDONYM_KEY": None,
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        # Sessions: idle expiry through the permanent-session lifetime, absolute expiry below.
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=30),
        "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=10),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "SESSION_COOKIE_NAME": "vaikuttavuus_session",
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        # Languages: Finnish by default, Swedish and English available.
        "BABEL_DEFAULT_LOCALE": "fi",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Helsinki",
        "LANGUAGES": ("fi", "sv", "en"),
        # Throttling (HTTP 429; the `limits` library's notation). The counters are shared by
        # every worker and server: "database://" keeps them in the app's database, a Redis URI
        # ("redis://host:6379") in Redis; "memory://" is for one process only.
        "RATELIMIT_STORAGE_URI": "database://",
        # Failed logins per client address (any account); per account and address; per
        # account from anywhere (browsers that logged in to the account before are exempt).
        "LOGIN_RATE_LIMIT": "10 per minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "10 per 10 minutes",
        "LOGIN_ACCOUNT_TOTAL_LIMIT": "100 per hour",
        # Wrong current passwords on the password form, per user.
        "PASSWORD_CHANGE_RATE_LIMIT": "5 per 10 minutes",
        # Unknown, expired and cancelled personal links per client address (valid links are
        # never refused).
        "PATIENT_LINK_MISS_LIMIT": "20 per 10 minutes",
        # Disclosure control: smallest count shown outside the clinician view.
        "MIN_CELL_SIZE": 5,
        # Resampling of the analyses behind the pages, CSVs and PDFs: bootstrap replicates and
        # imputed data sets (None: the number each pilot declares).
        "REPORT_BOOTSTRAP": 5_000,
        "REPORT_IMPUTATIONS": None,
        # Background jobs (vaikuttavuus.jobs): the queue of the workers that compute the
        # analysis snapshots. None: Huey on SQLite in the instance folder (jobs.sqlite3);
        # "redis://host:6379/0" for several machines; "immediate" runs each job at once in
        # the process that asks for it (tests, or no worker at all).
        "JOB_QUEUE_URL": None,
        # Seconds the data must have stayed unchanged before the default views and the
        # management pack are computed again (vaikuttavuus.services.precompute).
        "SNAPSHOT_DEBOUNCE_SECONDS": 60,
        # ... but at most this long after the last snapshot when the data never stop changing.
        "SNAPSHOT_MAX_DELAY_SECONDS": 900,
        # Days a finished snapshot is kept (nightly pruning; the newest two of each view stay
        # until then): views nobody asks for again and old code versions go.
        "SNAPSHOT_RETENTION_DAYS": 30,
        # Check every data version read against the full fingerprint of the data (slow at
        # scale: for the test suite, which turns it on, and for diagnosing a stale page).
        "DATA_VERSION_AUDIT": False,
        # Password hashing (argon2id); tests lower the cost.
        "ARGON2_TIME_COST": 3,
        "ARGON2_MEMORY_COST": 65536,
        # Outgoing messages.
        "MAIL_SERVER": None,
        "MAIL_PORT": 587,
        "MAIL_USERNAME": None,
        "MAIL_PASSWORD": None,
        "MAIL_USE_TLS": True,
        "MAIL_SENDER": "vaikuttavuus@example.invalid",
        "SMS_SENDER": "vaikuttavuus.services.messaging:LoggingSmsSender",
        # Behind a TLS-terminating reverse proxy: how many proxies' X-Forwarded-For/-Proto/
        # -Host/-Port headers to trust (werkzeug ProxyFix). 0 = serve directly, trust none.
        "TRUSTED_PROXIES": 0,
        # Production server (gunicorn).
        "SERVE_WORKERS": 2,
        "SERVE_THREADS": 4,
        "MAX_CONTENT_LENGTH": 200 * 1024 * 1024,
        # SQLite: seconds a writer waits for the write lock before the request answers 503.
        "SQLITE_BUSY_TIMEOUT": 30,
        # The Retry-After (seconds) of the 503 page shown while a dependency is down.
        "RETRY_AFTER_SECONDS": 60,
    }


def from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """Pick configuration keys from the environment and convert booleans and integers."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key in ENVIRONMENT_KEYS:
        raw = env.get(f"VAIKUTTAVUUS_{key}", env.get(key))
        if raw is None or raw == "":
            continue
        if key in BOOLEAN_KEYS:
            values[key] = raw.strip().lower() in {"1", "true", "yes", "on"}
        elif key in INTEGER_KEYS:
            values[key] = int(raw)
        else:
            values[key] = raw
    return values


SAMPLE_INSTANCE_CONFIG = '''\
"""Local configuration of this Vaikuttavuus instance (generated by `vaikuttavuus init`).

Keep this file out of version control and backed up together with the database: without
PSEUDONYM_KEY the stored identity-code hashes can no longer be matched.
"""

SECRET_KEY = "{secret_key}"
PSEUDONYM_KEY = "{pseudonym_key}"

# DATABASE_URL = "postgresql+psycopg://vaikuttavuus:password@127.0.0.1:5432/vaikuttavuus"
# PRODUCTION = True            # Secure cookies, refuse to start without keys
# PUBLIC_BASE_URL = "https://vaikuttavuus.example.fi"
# MIN_CELL_SIZE = 5
# MAIL_SERVER = "smtp.example.fi"
'''
