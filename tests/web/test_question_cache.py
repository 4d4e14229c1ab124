"""Rendered question blocks are reused only when nothing on the page differs.

The cache (``vaikuttavuus/views/question_cache.py``) keys a page's questions by instrument
version, section, language, the answers on the page and the hidden items; these tests show a
reused block is byte-for-byte what a fresh render gives, and that answers, language and
errors always show.
"""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import FORM_TOKEN_FIELD
from vaikuttavuus.views import question_cache

CHECKED = re.compile(r'<input checked id="[^"]+" name="([^"]+)" type="radio" value="([^"]+)"')
QUESTIONS = re.compile(r'(<div class="question.*)<div class="step-buttons">', re.S)


def _questions(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    match = QUESTIONS.search(page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)[:500]
    return match.group(1)


def _checked(block: str) -> set[tuple[str, str]]:
    return {
        (m.group(1), m.group(2))
        for m in re.finditer(
            r'<input checked id="[^"]+" name="([^"]+)" type="radio" value="([^"]+)"', block
        )
    }


def test_a_reused_block_is_what_a_fresh_render_gives(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    first = patient_link(enrol_patient())
    second = patient_link(enrol_patient())
    question_cache.clear()
    fresh = _questions(client, f"/r/{first}/1")
    reused = _questions(client, f"/r/{second}/1")
    assert reused == fresh
    question_cache.clear()
    assert _questions(client, f"/r/{second}/1") == fresh
    assert 'type="radio"' in fresh and "checked" not in fresh


def test_answers_given_show_on_the_page_and_not_on_anothers(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    answering = patient_link(enrol_patient())
    other = patient_link(enrol_patient())
    question_cache.clear()
    blank = _questions(client, f"/r/{answering}/1")
    names = sorted(set(re.findall(r'name="([a-z][a-z0-9_]*)" type="radio"', blank)))
    assert names
    page = client.get(f"/r/{answering}/1").get_data(as_text=True)
    token = FORM_TOKEN_FIELD.search(page)
    assert token
    chosen = {names[0]: re.findall(rf'name="{names[0]}" type="radio" value="([^"]+)"', blank)[-1]}
    response = client.post(
        f"/r/{answering}/1",
        data={"form_token": token.group(1), "direction": "back", **chosen},
    )
    assert response.status_code == 302
    assert _checked(_questions(client, f"/r/{answering}/1")) == set(chosen.items())
    assert _checked(_questions(client, f"/r/{other}/1")) == set()


def test_each_language_gets_its_own_block(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    token = patient_link(enrol_patient())
    question_cache.clear()
    finnish = _questions(client, f"/r/{token}/1?lang=fi")
    swedish = _questions(client, f"/r/{token}/1?lang=sv")
    assert finnish != swedish
    assert _questions(client, f"/r/{token}/1?lang=fi") == finnish


def test_errors_are_rendered_afresh(
    client: FlaskClient, enrol_patient: Any, patient_link: Any
) -> None:
    token = patient_link(enrol_patient())
    question_cache.clear()
    _questions(client, f"/r/{token}/1")
    page = client.get(f"/r/{token}/1").get_data(as_text=True)
    form_token = FORM_TOKEN_FIELD.search(page)
    assert form_token
    response = client.post(
        f"/r/{token}/1", data={"form_token": form_token.group(1), "direction": "next"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and 'class="question has-error"' in html
