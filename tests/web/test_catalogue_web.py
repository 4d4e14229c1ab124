"""The read-only product catalogue page: products with unit costs per price year, the price
index and the TDABC derivation, for pilot leads and administrators only, linked from their
navigation; a broken costing folder is explained instead of failing."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_decimal
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import login
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.definitions.costing import load_costing
from vaikuttavuus.paths import costing_dir

URL = "/catalogue/"


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


def logged_in(app: Flask, make_user: Any, role: str) -> FlaskClient:
    make_user(f"user_{role}", role)
    client = app.test_client()
    assert login(client, f"user_{role}").status_code == 302
    return client


def page_text(client: FlaskClient, url: str = URL) -> str:
    response = client.get(url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # tags and white space to single spaces (Babel's no-break spaces in numbers are kept)
    return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def fi(value: float, digits: int) -> str:
    return format_decimal(value, format="#,##0." + "0" * digits, locale="fi")


def test_pilot_leads_and_admins_see_the_catalogue_others_do_not(app: Flask, make_user: Any) -> None:
    for role in ("pilot_lead", "admin"):
        client = logged_in(app, make_user, role)
        assert client.get(URL).status_code == 200, role
        # the navigation links to it on every page
        assert f'href="{URL}"' in client.get("/auth/password").get_data(as_text=True)
    for role in ("clinician", "management"):
        client = logged_in(app, make_user, role)
        assert client.get(URL).status_code == 403, role
        assert f'href="{URL}"' not in client.get("/auth/password").get_data(as_text=True)
    anonymous = app.test_client().get(URL)
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]


def test_the_page_shows_products_unit_costs_and_the_price_index(app: Flask, make_user: Any) -> None:
    catalogue = load_costing(costing_dir())
    text = page_text(logged_in(app, make_user, "pilot_lead"))
    assert "Leikkaussaliminuutti (sis. henkilöstö)" in text  # Finnish by default
    # the catalogue's units are named in the page's language (issue 17), not by their codes
    units = {"visit": "käynti", "contact": "kontakti", "minute": "minuutti", "day": "vuorokausi"}
    for product in catalogue.products:
        unit = units.get(product.unit)
        assert f"{product.code} {product.name.fi} {unit or ''}".strip() in text
        if unit is not None:
            assert f"{product.code} {product.name.fi} {product.unit} " not in text
    # OR_MINUTE: 21.30 € in 2024 and 22.00 € in 2025, in its cost centre
    or_minute = "OR_MINUTE Leikkaussaliminuutti (sis. henkilöstö) minuutti Leikkausosasto OR"
    assert f"{or_minute} {fi(21.3, 2)} {fi(22, 2)}" in text
    for point in catalogue.price_index:
        assert f"{point.year} {fi(point.index, 1)}" in text


def test_the_page_shows_how_tdabc_unit_costs_are_derived(app: Flask, make_user: Any) -> None:
    client = logged_in(app, make_user, "admin")
    text = page_text(client)
    # urologist: 250 000 € / (104 400 min × 0.8) = 2.9933 € per minute
    rate = 250_000 / 83_520
    inputs = f"{fi(250_000, 0)} {fi(104_400, 0)} {fi(0.8, 2)} {fi(83_520, 0)}"
    assert f"Urologi urologist {inputs} {fi(rate, 4)}" in text
    # a first visit: 60 urologist minutes, 60 nurse minutes and 75 room minutes at 2025 prices,
    # beside the catalogue's 330 €
    first_visit = 60 * rate + 60 * 92_000 / 83_520 + 75 * 60_000 / 96_000
    assert (
        f"Urologian poliklinikan ensikäynti URO_VISIT_FIRST, yksikkö: käynti {fi(first_visit, 2)} "
        f"{fi(330, 2)} {fi(first_visit / 330, 2)}"
    ) in text
    assert f"– Urologi urologist {fi(60, 1)} {fi(rate, 4)} {fi(60 * rate, 2)}" in text
    english = page_text(client, URL + "?lang=en")
    assert "Urology outpatient first visit URO_VISIT_FIRST, per visit 292.56 330.00 0.89" in english


@pytest.fixture
def own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "costing"
    shutil.copytree(costing_dir(), folder)
    monkeypatch.setenv("VAIKUTTAVUUS_COSTING", str(folder))
    return folder


def test_a_folder_without_tdabc_inputs(app: Flask, make_user: Any, own_folder: Path) -> None:
    (own_folder / "tdabc.yaml").unlink()
    text = page_text(logged_in(app, make_user, "pilot_lead"))
    assert "OR_MINUTE" in text
    assert "Kustannuskansiossa ei ole TDABC-lähtötietoja." in text
    assert "Urologi urologist" not in text


def test_a_broken_folder_is_explained_not_a_server_error(
    app: Flask, make_user: Any, own_folder: Path
) -> None:
    (own_folder / "unit_costs.csv").write_text(
        "code,price_year,unit_cost_eur\nOR_MINUTE,2025,ilmainen\n", encoding="utf-8"
    )
    client = logged_in(app, make_user, "pilot_lead")
    response = client.get(URL)
    assert response.status_code == 200
    text = unescape(response.get_data(as_text=True))
    assert "unit_costs.csv" in text and "line 2, column unit_cost_eur" in text
