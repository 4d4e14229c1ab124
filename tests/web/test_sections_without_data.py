"""A pilot whose sections have no data yet (three persons in one arm, nobody answered) shows
every section in Finnish and Swedish without an English or technical message: the comparison
says that an arm has too few persons, and nothing is attempted that cannot be computed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.conftest import login

SECTIONS = {
    "bph": ("overview", "quality", "outcomes", "costs", "cea", "funnel"),
    "older-adults": ("overview", "outcomes", "costs", "services"),
}
TOO_FEW = {
    "fi": "Jossakin ryhmässä on liian vähän henkilöitä, jotta vertailun voisi näyttää.",
    "sv": "En grupp har för få personer för att jämförelsen ska kunna visas.",
}
UNTRANSLATED = re.compile(r'<span lang="en">|<code class="small" translate="no">')


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_sections_without_data_speak_the_users_language(
    app: Flask, enrol_patient: Any, make_user: Any, language: str
) -> None:
    make_user("lead", "pilot_lead")
    for _ in range(3):
        enrol_patient(index_offset_days=-500)
    enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=-500)
    client = app.test_client()
    assert login(client, "lead").status_code == 302
    for code, sections in SECTIONS.items():
        for section in sections:
            response = client.get(f"/pilot/{code}/?section={section}&lang={language}")
            assert response.status_code == 200, (code, section)
            html = response.get_data(as_text=True)
            assert not UNTRANSLATED.search(html), (code, section, UNTRANSLATED.search(html))
            if section == "cea":
                assert TOO_FEW[language] in html
