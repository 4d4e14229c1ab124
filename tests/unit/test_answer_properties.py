"""Property tests (hypothesis) of answer parsing: ``domain.answers.canonical`` and the
questionnaire form parsing in ``forms.questionnaire``.

Whatever arrives (text, numbers of any size, NaN, booleans, lists, dates and datetimes, odd
unicode), parsing either gives a stored answer or raises :class:`AnswerError` with one of the
documented codes — nothing else — and a stored answer parses back to itself, also through the
form a patient sees pre-filled with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.conftest import test_config as make_config
from vaikuttavuus import create_app
from vaikuttavuus.definitions import load_instruments
from vaikuttavuus.domain.answers import (
    DEFAULT_TEXT_LIMIT,
    MULTI_SEPARATOR,
    AnswerError,
    StoredAnswer,
    canonical,
    enabled_item_ids,
)
from vaikuttavuus.domain.specs import InstrumentSpec, Item, Section
from vaikuttavuus.forms.questionnaire import build_section_form, collect_answers
from vaikuttavuus.paths import questionnaires_dir

DOCUMENTED_CODES = {
    "not_an_option",
    "not_a_number",
    "not_an_integer",
    "out_of_range",
    "not_a_date",
    "too_long",
}
NUMERIC = {"integer", "decimal", "scale_0_10", "yes_no"}
TEXT = {"fi": "Kysymys", "sv": "Fråga", "en": "Question"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALL_TYPES = InstrumentSpec.model_validate(
    {
        "id": "all_types",
        "version": "1",
        "kind": "prom",
        "title": TEXT,
        "licence": "test",
        "source": "test",
        "sections": [
            {
                "id": "everything",
                "title": TEXT,
                "items": [
                    {"id": "choice", "type": "single_choice", "text": TEXT,
                     "options": [{"code": 1, "text": TEXT}, {"code": 2, "text": TEXT},
                                 {"code": "x", "text": TEXT}]},
                    {"id": "multi", "type": "multiple_choice", "text": TEXT, "required": False,
                     "options": [{"code": "a", "text": TEXT}, {"code": "b", "text": TEXT},
                                 {"code": 3, "text": TEXT}]},
                    {"id": "count", "type": "integer", "text": TEXT, "min": 0, "max": 120},
                    {"id": "weight", "type": "decimal", "text": TEXT, "min": -5.5, "max": 250,
                     "unit": "kg"},
                    {"id": "scale", "type": "scale_0_10", "text": TEXT},
                    {"id": "yn", "type": "yes_no", "text": TEXT},
                    {"id": "day", "type": "date", "text": TEXT},
                    {"id": "free", "type": "text", "text": TEXT, "required": False,
                     "max_length": 50},
                    {"id": "why", "type": "text", "text": TEXT,
                     "enable_when": [{"item": "yn", "operator": "=", "value": True}]},
                ],
            }
        ],
    }
)  # fmt: skip
SPECS = [ALL_TYPES, *load_instruments(questionnaires_dir())]
ITEMS = [(spec, item) for spec in SPECS for item in spec.items]


@pytest.fixture(scope="module")
def form_app() -> Iterator[Flask]:
    """An app for translations and WTForms (no database is touched)."""
    app = create_app(make_config("sqlite://"))
    with app.test_request_context():
        yield app


# -- strategies ----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.text(),
    st.text(alphabet="0123456789,.-+ \u2212\u00a0e;").filter(bool),
    st.dates(),
    st.datetimes(),
    st.dates().map(lambda d: f"{d.day}.{d.month}.{d.year}"),
    st.sampled_from(["kyllä", "Nej", "TRUE", " 1.0 ", "1e3", "0x10", "٣", "NaN", "-0", "a;b;3"]),
)
raw_values = st.one_of(scalars, st.lists(scalars, max_size=4), st.tuples(st.text(), st.text()))


@st.composite
def item_and_raw(draw: st.DrawFn) -> tuple[InstrumentSpec, Item, Any]:
    spec, item = draw(st.sampled_from(ITEMS))
    return spec, item, draw(raw_values)


@st.composite
def valid_raw(draw: st.DrawFn, spec: InstrumentSpec, item: Item) -> Any:
    """An answer a person could give to ``item`` (as a form or an import would send it)."""
    if item.type == "single_choice":
        return str(draw(st.sampled_from([o.code for o in spec.options_for(item)])))
    if item.type == "multiple_choice":
        codes = [str(o.code) for o in spec.options_for(item)]
        return draw(st.lists(st.sampled_from(codes), min_size=1, unique=True))
    if item.type in {"integer", "scale_0_10"}:
        low, high = item.value_range or (0, 10)
        return str(draw(st.integers(int(low), int(high))))
    if item.type == "decimal":
        low, high = item.value_range or (0, 10)
        number = draw(st.decimals(min_value=Decimal(str(low)), max_value=Decimal(str(high)),
                                  places=2))  # fmt: skip
        return str(number).replace(".", draw(st.sampled_from([".", ","])))
    if item.type == "yes_no":
        return draw(st.sampled_from(["1", "0"]))
    if item.type == "date":
        return draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))).isoformat()
    limit = item.max_length or DEFAULT_TEXT_LIMIT
    typed = st.characters(blacklist_categories=("Cc", "Cs"))  # what a keyboard can give
    return draw(
        st.text(typed, min_size=1, max_size=min(limit, 300)).filter(lambda s: s.strip())
    )


# -- canonical -----------------------------------------------------------------------------------


@SETTINGS
@given(item_and_raw())
def test_canonical_raises_only_documented_errors(case: tuple[InstrumentSpec, Item, Any]) -> None:
    spec, item, raw = case
    try:
        stored = canonical(spec, item, raw)
    except AnswerError as error:
        assert error.code in DOCUMENTED_CODES
        assert error.item_id == item.id
        return
    if stored is None:
        return
    assert isinstance(stored, StoredAnswer) and isinstance(stored.value, str) and stored.value
    # A stored value parses back to itself.
    assert canonical(spec, item, stored.value) == stored
    _check_stored(spec, item, stored)


def _check_stored(spec: InstrumentSpec, item: Item, stored: StoredAnswer) -> None:
    if item.type in NUMERIC:
        assert stored.value_num is not None and float(stored.value) == stored.value_num
        bounds = item.value_range
        if bounds is not None:
            assert bounds[0] <= stored.value_num <= bounds[1]
    if item.type in {"integer", "scale_0_10"}:
        assert stored.value == str(int(stored.value_num or 0))
    if item.type == "single_choice":
        assert stored.value in {str(o.code) for o in spec.options_for(item)}
    if item.type == "multiple_choice":
        order = [str(o.code) for o in spec.options_for(item)]
        chosen = stored.value.split(MULTI_SEPARATOR)
        assert chosen == [code for code in order if code in chosen]
    if item.type == "date":
        assert date.fromisoformat(stored.value).isoformat() == stored.value
    if item.type == "text":
        assert stored.value == stored.value.strip()
        assert len(stored.value) <= (item.max_length or DEFAULT_TEXT_LIMIT)
        assert "\x00" not in stored.value and "\r" not in stored.value


@SETTINGS
@given(st.data())
def test_valid_answers_are_stored(data: st.DataObject) -> None:
    spec, item = data.draw(st.sampled_from(ITEMS))
    raw = data.draw(valid_raw(spec, item))
    stored = canonical(spec, item, raw)
    assert stored is not None
    assert canonical(spec, item, stored.value) == stored
    _check_stored(spec, item, stored)
    if item.type == "multiple_choice":
        assert canonical(spec, item, list(reversed(raw))) == stored
        assert canonical(spec, item, [*raw, raw[0]]) == stored  # a code sent twice


def test_datetimes_from_spreadsheets_are_dates() -> None:
    item = ALL_TYPES.item("day")
    stored = canonical(ALL_TYPES, item, datetime(2025, 3, 4, 0, 0))
    assert stored == StoredAnswer("2025-03-04", None)


def test_enormous_numbers_are_refused_not_crashed() -> None:
    for raw in (10**400, -(10**400), "9" * 400):
        with pytest.raises(AnswerError) as error:
            canonical(ALL_TYPES, ALL_TYPES.item("count"), raw)
        assert error.value.code in {"not_a_number", "out_of_range"}


# -- the questionnaire form ----------------------------------------------------------------------


form_values = st.one_of(
    st.text(max_size=60),
    st.text(max_size=10).map(lambda s: s + "\x00"),
    st.sampled_from(["1", "2", "x", "a", "b", "3", "0", "7,5", "1.5", "2025-02-30", "31.1.2025",
                     "", " ", "-1", "1e9", "٣"]),
)  # fmt: skip


@st.composite
def posted(draw: st.DrawFn, section: Section) -> MultiDict[str, str]:
    names = [item.id for item in section.items] + ["junk", "form_token"]
    pairs = draw(st.lists(st.tuples(st.sampled_from(names), form_values), max_size=20))
    return MultiDict(pairs)


SECTIONS = [(spec, section) for spec in SPECS for section in spec.sections]


@SETTINGS
@given(st.data())
def test_section_forms_never_fail_on_posted_data(form_app: Flask, data: st.DataObject) -> None:
    spec, section = data.draw(st.sampled_from(SECTIONS))
    formdata = data.draw(posted(section))
    enforce = data.draw(st.booleans())
    form = build_section_form(spec, section, "fi", formdata=formdata)
    values, errors = collect_answers(form, {}, enforce_required=enforce)
    ids = {item.id for item in section.items}
    assert set(errors) <= ids and all(isinstance(m, str) and m for m in errors.values())
    assert set(values) <= ids
    for item_id, stored in values.items():
        if stored is None or item_id in errors:
            continue
        item = spec.item(item_id)
        assert canonical(spec, item, stored.value) == stored
        _check_stored(spec, item, stored)


def _browser_post(form: Any, section: Section) -> MultiDict[str, str]:
    """What a browser sends back for a form pre-filled with stored answers."""
    pairs: list[tuple[str, str]] = []
    for item in section.items:
        field = form[item.id]
        if item.type == "multiple_choice":
            pairs.extend((item.id, value) for value in field.data or [])
        elif item.type in {"single_choice", "scale_0_10", "yes_no"}:
            if field.data not in (None, "", "None"):
                pairs.append((item.id, str(field.data)))
        else:
            value = field._value()
            if value:
                pairs.append((item.id, value))
    return MultiDict(pairs)


@SETTINGS
@given(st.data())
def test_stored_answers_round_trip_through_the_form(form_app: Flask, data: st.DataObject) -> None:
    spec, section = data.draw(st.sampled_from(SECTIONS))
    stored: dict[str, StoredAnswer] = {}
    for item in section.items:
        if data.draw(st.booleans()):
            answer = canonical(spec, item, data.draw(valid_raw(spec, item)))
            assert answer is not None
            stored[item.id] = answer
    plain = {k: v.value for k, v in stored.items()}
    shown = build_section_form(spec, section, "fi", stored=plain)
    again = build_section_form(spec, section, "fi", formdata=_browser_post(shown, section))
    values, errors = collect_answers(again, {}, enforce_required=False)
    assert errors == {}
    kept = {k: v for k, v in values.items() if v is not None}
    shown_items = set(enabled_item_ids(spec, plain))
    assert kept == {k: v for k, v in stored.items() if k in shown_items}
