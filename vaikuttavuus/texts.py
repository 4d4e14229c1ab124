"""Texts produced outside the web layer (the cohort analytics, the CLI): marked with
:func:`N_` for extraction and translated with :func:`translate`.

The analytics must not depend on Flask (``tests/unit/test_analytics_layers.py``), yet some of
their results are sentences (the caveats of the services analysis). :func:`translate` uses
Flask-Babel's ``gettext`` lazily: in the language of the current request or ``force_locale``
block, and the English text itself outside an application (Babel's null translations).
"""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 - Babel's marker for texts translated where shown
    """Mark ``text`` for translation (``scripts/translations`` extracts it)."""
    return text


def translate(text: str, **variables: object) -> str:
    """``text`` (a msgid) in the current language, with ``%(name)s`` placeholders filled."""
    from flask_babel import gettext

    return str(gettext(text, **variables))
