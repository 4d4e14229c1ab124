"""Blueprints, error pages and template helpers."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from flask import Flask, render_template, request
from flask_babel import format_date, format_datetime, format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlalchemy import inspect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db


def init_app(app: Flask) -> None:
    from vaikuttavuus.views import (
        admin,
        assisted,
        auth,
        catalogue,
        clinician,
        costs,
        exports,
        guidance,
        imports,
        invitations,
        main,
        management,
        measurements,
        patient,
        pilot,
        privacy,
    )

    modules = (main, auth, patient, clinician, pilot, management, admin, invitations, assisted)
    for module in (*modules, privacy, imports, measurements, costs, exports, catalogue, guidance):
        app.register_blueprint(module.bp)

    app.jinja_env.filters["num"] = number
    app.jinja_env.filters["unit_name"] = unit_name
    app.jinja_env.filters["keep_intervals"] = keep_intervals
    app.jinja_env.filters["unit_amount"] = unit_amount
    app.jinja_env.filters["day"] = day
    app.jinja_env.filters["moment"] = moment
    app.jinja_env.filters["how_label"] = how_label
    app.jinja_env.globals["text_size"] = text_size

    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def number(value: Any, digits: int = 1) -> str:
    """A number in the current locale (decimal comma in Finnish and Swedish); '–' for none."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return with_minus_sign(format_decimal(value, format="#,##0"))
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return with_minus_sign(format_decimal(value, format=pattern))


# The product catalogue's units (costing/README.md: lower-case identifiers) as the pages name
# them; a unit not listed here is shown as it is written in the catalogue.
UNIT_NAMES = {
    "visit": _l("visit"),
    "contact": _l("contact"),
    "minute": _l("minute"),
    "hour": _l("hour"),
    "day": _l("day"),
    "set": _l("set"),
    "item": _l("item"),
    "sample": _l("sample"),
    "panel": _l("panel"),
    "test": _l("test"),
    "session": _l("session"),
}


def unit_name(code: str | None) -> str:
    """A catalogue unit in the user's language (``per %(unit)s``, a unit column)."""
    if not code:
        return ""
    return str(UNIT_NAMES.get(code, code))


def unit_amount(quantity: float | None, code: str | None, digits: int = 2) -> str:
    """A quantity with its unit, e.g. *2,5 tuntia*, *1 käynti*."""
    if quantity is None or (isinstance(quantity, float) and math.isnan(quantity)):
        return "–"
    whole = float(quantity).is_integer()
    text = number(int(quantity) if whole else float(quantity), digits)
    one = whole and int(quantity) == 1
    forms = {
        "visit": lambda: ngettext(
            "%(amount)s visit", "%(amount)s visits", 1 if one else 2, amount=text
        ),
        "contact": lambda: ngettext(
            "%(amount)s contact", "%(amount)s contacts", 1 if one else 2, amount=text
        ),
        "minute": lambda: ngettext(
            "%(amount)s minute", "%(amount)s minutes", 1 if one else 2, amount=text
        ),
        "hour": lambda: ngettext(
            "%(amount)s hour", "%(amount)s hours", 1 if one else 2, amount=text
        ),
        "day": lambda: ngettext("%(amount)s day", "%(amount)s days", 1 if one else 2, amount=text),
        "item": lambda: ngettext(
            "%(amount)s item", "%(amount)s items", 1 if one else 2, amount=text
        ),
        "session": lambda: ngettext(
            "%(amount)s session", "%(amount)s sessions", 1 if one else 2, amount=text
        ),
    }
    if code in forms:
        return str(forms[code]())
    return f"{text} {unit_name(code)}".strip()


_INTERVAL = re.compile(r"\([^()]*?…[^()]*?\)|^[^()]*?…[^()]*$")


def keep_intervals(text: object) -> Markup:
    """A table cell's text with each confidence interval (``(−2 929 € … −2 557 €)``, or a
    cell that is one interval) kept on one line: a narrow column breaks before the interval,
    never inside it."""
    escaped = str(escape(text))
    return Markup(_INTERVAL.sub(lambda m: f'<span class="nowrap">{m.group(0)}</span>', escaped))


def with_minus_sign(text: str) -> str:
    """The typographic minus sign (U+2212) for negative numbers, as in every other figure."""
    return "\u2212" + text[1:] if text.startswith("-") else text


def day(value: date | datetime | None) -> str:
    if value is None:
        return "–"
    return format_date(value, format="d.M.yyyy")


ANSWERED_HOW = {
    "web": _l("on the web"),
    "phone": _l("by phone"),
    "paper": _l("on paper"),
    "imported": _l("imported"),
    "proxy": _l("by proxy"),
}
"""How a response was given (its mode, and ``proxy``), as the pages mark it."""


def how_label(mark: str) -> str:
    return str(ANSWERED_HOW.get(mark, mark))


def moment(value: datetime | None) -> str:
    if value is None:
        return "–"
    return format_datetime(value, format="d.M.yyyy HH:mm")


def text_size() -> str:
    """Large-text mode, chosen on a patient page and remembered in a cookie."""
    requested = request.args.get("text")
    if requested in {"large", "normal"}:
        return requested
    return "large" if request.cookies.get("text_size") == "large" else "normal"


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    db.session.rollback()
    return (
        render_template(
            "error.html",
            code=400,
            title=_("The form has expired"),
            message=_(
                "For your security the form could not be accepted. Go back, reload the page "
                "and send it again."
            ),
        ),
        400,
    )


ERROR_TEXTS = {
    400: (_l("Bad request"), _l("The request could not be understood.")),
    403: (_l("No access"), _l("You do not have access to this page.")),
    404: (_l("Page not found"), _l("The page you are looking for does not exist.")),
    405: (_l("Not allowed"), _l("This action is not allowed here.")),
    413: (_l("File too large"), _l("The file is too large to upload.")),
    429: (_l("Too many attempts"), _l("Too many attempts. Wait a moment and try again.")),
}


def _http_error(error: HTTPException) -> Any:
    code = error.code or 500
    if code < 400:
        return error
    db.session.rollback()
    title, message = ERROR_TEXTS.get(code, (_l("Error"), _l("Something went wrong.")))
    return render_template("error.html", code=code, title=title, message=message), code


def _rollback_quietly() -> None:
    """Roll the request's session back; with the database gone, rolling back fails too."""
    try:
        db.session.rollback()
    except Exception:
        db.session.remove()


def _outage_language() -> str:
    """The page language without asking the database (it may be what is down): ``?lang=``,
    the session's choice, the loaded user's or the patient's language, the browser's."""
    from flask import current_app, g, session

    supported = tuple(current_app.config["LANGUAGES"])
    user = g.get("_login_user")
    # Only what is already loaded: a user object expired by the rollback would query.
    loaded = inspect(user, raiseerr=False) if user is not None else None
    user_locale = loaded.dict.get("locale") if loaded is not None else None
    for candidate in (
        request.args.get("lang"),
        session.get("lang"),
        user_locale,
        g.get("patient_language"),
    ):
        if candidate in supported:
            return str(candidate)
    return request.accept_languages.best_match(supported) or supported[0]


def service_unavailable(error: BaseException) -> Response:
    """503 with ``Retry-After``: a dependency is down (see :mod:`vaikuttavuus.health`). The
    page says to try again in a minute — to patients also that what they saved is kept —
    in their language, and renders without the database."""
    from flask import current_app, g, make_response
    from flask_babel import force_locale

    from vaikuttavuus.health import outage_summary

    language = _outage_language()
    _rollback_quietly()
    # The page needs no user, and a user object expired by the rollback would query.
    g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]
    current_app.logger.warning(
        "dependency unavailable (503) on %s %s: %s",
        request.method,
        request.path if request.blueprint != "patient" else "/r/…",
        outage_summary(error),
    )
    retry_after = int(current_app.config.get("RETRY_AFTER_SECONDS", 60))
    with force_locale(language):
        html = render_template(
            "unavailable.html",
            language=language,
            patient=request.blueprint == "patient",
            resend=request.method != "GET",
        )
    response = make_response(html, 503)
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    # The rate limiter's headers would replace Retry-After; the request boundary
    # (vaikuttavuus.database) puts it back.
    response.outage_retry_after = retry_after  # type: ignore[attr-defined]
    return response


def _unexpected_error(error: Exception) -> Any:
    from flask import current_app

    from vaikuttavuus.health import is_outage

    if isinstance(error, HTTPException):
        return _http_error(error)
    if is_outage(error):
        return service_unavailable(error)
    db.session.rollback()
    current_app.logger.exception("unexpected error")
    if current_app.config.get("TESTING") and current_app.config.get("PROPAGATE_TEST_ERRORS", True):
        raise error
    return (
        render_template(
            "error.html",
            code=500,
            title=_("Something went wrong"),
            message=_("The error has been logged. Nothing you saved earlier was lost."),
        ),
        500,
    )
