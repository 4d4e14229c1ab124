"""Languages: Finnish by default, Swedish and English (Flask-Babel catalogues).

The language is chosen by, in order: ``?lang=`` on the request (remembered in the session),
the session, the logged-in user's preference, the patient's preferred language (set by the
patient views), and Finnish (also outside a request, e.g. the CLI without ``force_locale``).
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
    requested = request.args.get("lang")
    if requested in supported():
        session["lang"] = requested
        return requested
    chosen = session.get("lang")
    if chosen in supported():
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.locale in supported():
        return str(current_user.locale)
    patient_language = g.get("patient_language")
    if patient_language in supported():
        return str(patient_language)
    return "fi"


def current_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale.language) if locale is not None else "fi"
