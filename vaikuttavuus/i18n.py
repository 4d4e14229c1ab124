"""Languages: Finnish by default, Swedish and English (Flask-Babel catalogues).

The language is chosen by, in order: the patient pages' own choice (``g.patient_language``,
set by :mod:`vaikuttavuus.views.patient` from ``?lang=``, the browser's earlier choice and the
person's registered language), ``?lang=`` on the request (remembered in the session), the
session, the logged-in user's preference, and Finnish (also outside a request, e.g. the CLI
without ``force_locale``).
"""

from __future__ import annotations

from flask import Flask, g, has_request_context, request, session
from flask_login import current_user

from vaikuttavuus.extensions import babel

LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    app.jinja_env.globals["current_language"] = current_language


def supported() -> tuple[str, ...]:
    from flask import current_app

    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    if not has_request_context():  # the CLI or a background job outside ``force_locale``
        return "fi"
    patient_language = g.get("patient_language")
    if patient_language in supported():
        return str(patient_language)
    requested = request.args.get("lang")
    if requested in supported():
        if request.blueprint != "patient":  # the patient pages keep no session
            session["lang"] = requested
        return requested
    chosen = session.get("lang")
    if chosen in supported():
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.locale in supported():
        return str(current_user.locale)
    return "fi"


def current_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale.language) if locale is not None else "fi"
