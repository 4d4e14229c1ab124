"""Helpers shared by the staff views."""

from __future__ import annotations

from flask import abort
from flask_login import current_user
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db
from vaikuttavuus.models import Pilot
from vaikuttavuus.queries import pilot_by_code


def require_pilot(code: str) -> Pilot:
    """The pilot named in the URL, if the current user may see it (404 / 403 otherwise)."""
    pilot = pilot_by_code(db.session, code)
    if pilot is None:
        abort(404)
    if not current_user.may_access_pilot(pilot.code):
        abort(403)
    return pilot


def visible_pilots() -> list[Pilot]:
    from sqlalchemy import select

    pilots = db.session.scalars(select(Pilot).order_by(Pilot.code)).all()
    return [p for p in pilots if current_user.may_access_pilot(p.code)]


DATA_VERSION_HEADER = "X-Data-Version"
"""Response header of CSV and PDF downloads: the data version their snapshot saw."""


def with_data_version(response: Response, label: str) -> Response:
    """Say in ``response`` which data version (:class:`~vaikuttavuus.database.DataVersion`)
    it was computed from."""
    response.headers[DATA_VERSION_HEADER] = label
    return response
