"""Flask extensions, created unbound and initialised in :func:`vaikuttavuus.create_app`."""

from __future__ import annotations

from flask_babel import Babel
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from vaikuttavuus.models.base import Base
from vaikuttavuus.rate_limits import Throttle

db = SQLAlchemy(model_class=Base, disable_autonaming=True)
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
limiter = Throttle()
"""Failure counters shared by every worker (:mod:`vaikuttavuus.rate_limits`)."""
