"""Small presentation rules: the cohort page's section buttons are not a bulleted list, and
euro amounts take the same minus sign as every other signed figure (U+2212)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale

from tests.support.isolation import fresh_globals_per_request
from tests.support.staff import staff_login
from vaikuttavuus.services.cohort_view import MINUS, fmt_euro, fmt_interval, fmt_signed


def css_rules(css: str) -> dict[str, str]:
    """Selector → declarations of a plain stylesheet (no nesting needed here)."""
    rules: dict[str, str] = {}
    plain = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", plain):
        for selector in selectors.split(","):
            key = " ".join(selector.split())
            rules[key] = rules.get(key, "") + body
    return rules


def test_the_section_buttons_have_no_bullets(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    fresh_globals_per_request(app)
    make_user("vastaava", "pilot_lead")
    staff_login(client, "vastaava")
    html = client.get("/pilot/bph/").get_data(as_text=True)
    nav = re.search(r'<nav class="section-nav"[^>]*>\s*<ul>(.*?)</ul>', html, re.S)
    assert nav, "the sections are a list inside the section-nav"
    assert nav.group(1).count("<li>") >= 5
    with client.get("/static/css/app.css") as response:
        css = response.get_data(as_text=True)
    rules = css_rules(css)
    assert re.search(r"list-style:\s*none", rules.get(".section-nav ul", "")), rules.get(
        ".section-nav ul"
    )
    assert re.search(r"padding:\s*0", rules[".section-nav ul"])


@pytest.mark.parametrize(
    ("language", "amount", "signed"),
    [
        ("fi", "\u22122\xa0903\xa0€", "\u22124\xa0607,2"),
        ("sv", "\u22122\xa0903\xa0€", "\u22124\xa0607,2"),
        ("en", "\u2212€2,903", "\u22124,607.2"),
    ],
)
def test_euros_use_the_minus_sign_of_the_other_figures(
    app: Flask, language: str, amount: str, signed: str
) -> None:
    with app.test_request_context(), force_locale(language):
        assert fmt_euro(-2903.4) == amount
        assert fmt_signed(-4607.2) == signed
        assert fmt_euro(-2903.4)[0] == fmt_signed(-4607.2)[0] == MINUS
        assert "-" not in fmt_euro(-2903.4)
        assert fmt_euro(2903.4) == amount.removeprefix(MINUS)
        assert fmt_euro(-0.4) == fmt_euro(0)  # no "−0 €"
        assert MINUS not in fmt_euro(-0.4)
        assert fmt_interval(-3000, -1000, kind="euro").count(MINUS) == 2
