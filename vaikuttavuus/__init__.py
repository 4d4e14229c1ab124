"""Vaikuttavuus: PROM/PREM collection, data linkage and cost-effectiveness reporting."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from vaikuttavuus import config as config_defaults

__version__ = "0.1.0"


class ConfigurationError(RuntimeError):
    """The instance is not configured well enough to start (e.g. no secret keys)."""


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask application.

    Configuration: built-in defaults → ``instance/config.py`` → environment → ``test_config``.
    """
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_override())
    instance_path = Path(app.instance_path)
    app.config.from_mapping(config_defaults.defaults(instance_path))
    if test_config is None or not test_config.get("IGNORE_INSTANCE_CONFIG"):
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_mapping(config_defaults.from_environment())
    if test_config is not None:
        app.config.from_mapping(test_config)
    _check_and_complete_config(app)

    from vaikuttavuus import database, i18n, jobs, pdf, report_settings, security, web

    report_settings.configure(
        app.config["REPORT_BOOTSTRAP"],
        app.config["REPORT_IMPUTATIONS"],
        app.config.get("BABEL_DEFAULT_TIMEZONE"),
    )

    database.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    web.init_app(app)
    pdf.init_app(app)
    jobs.init_app(app)
    return app


def instance_override() -> str | None:
    """``VAIKUTTAVUUS_INSTANCE`` points at another instance folder (config and SQLite file)."""
    value = os.environ.get("VAIKUTTAVUUS_INSTANCE")
    return str(Path(value).resolve()) if value else None


def _check_and_complete_config(app: Flask) -> None:
    cfg = app.config
    missing = [key for key in ("SECRET_KEY", "PSEUDONYM_KEY") if not cfg.get(key)]
    if missing:
        raise ConfigurationError(
            f"{', '.join(missing)} not set: run `vaikuttavuus init` to create "
            f"{Path(app.instance_path) / 'config.py'} with new keys, or set them in the "
            "environment."
        )
    if cfg["PRODUCTION"]:
        weak = [key for key in ("SECRET_KEY", "PSEUDONYM_KEY") if len(str(cfg[key])) < 32]
        if weak:
            raise ConfigurationError(
                f"{', '.join(weak)} too short for production (at least 32 random characters; "
                "`vaikuttavuus init` generates such keys)."
            )
        cfg["SESSION_COOKIE_SECURE"] = True
        # ASVS 3.4.4: a __Host- cookie is only accepted over HTTPS, from this host, for the
        # whole site, so a neighbouring host or plain-http page cannot plant or overwrite it.
        if not str(cfg["SESSION_COOKIE_NAME"]).startswith("__Host-"):
            cfg["SESSION_COOKIE_NAME"] = "__Host-" + str(cfg["SESSION_COOKIE_NAME"])
        cfg["SESSION_COOKIE_DOMAIN"] = None
        cfg["SESSION_COOKIE_PATH"] = "/"
        if str(cfg["DATABASE_URL"]).startswith("sqlite") and not cfg.get(
            "ALLOW_SQLITE_IN_PRODUCTION"
        ):
            app.logger.warning("PRODUCTION with SQLite: use PostgreSQL (DATABASE_URL) for real use")
    cfg["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(str(cfg["DATABASE_URL"]))


def normalise_database_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url
