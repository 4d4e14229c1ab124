"""Answer values: parsing, canonical storage form, conditional display and completeness.

Every answer is stored as text (``value``) plus, when numeric, a number (``value_num``):
choice codes as written in the definition, numbers with a dot, dates in ISO form, the codes
of a multiple-choice item joined by ``;`` in option order, yes/no as ``1``/``0``; free text with
personal identity codes masked (:func:`free_text`). The same rules serve the patient forms,
assisted entry, imports and FHIR conversion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from vaikuttavuus.domain.identity import mask_identity_codes
from vaikuttavuus.domain.specs import EnableWhen, InstrumentSpec, Item

MULTI_SEPARATOR = ";"
DEFAULT_TEXT_LIMIT = 2000
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class AnswerError(ValueError):
    """An answer that does not fit its item. ``code`` is a stable key for translated messages."""

    def __init__(self, item_id: str, code: str, detail: str = "") -> None:
        super().__init__(f"{item_id}: {code}{' (' + detail + ')' if detail else ''}")
        self.item_id = item_id
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class StoredAnswer:
    value: str
    value_num: float | None


def _as_number(item: Item, raw: object) -> float:
    if isinstance(raw, bool):
        raise AnswerError(item.id, "not_a_number", str(raw))
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError as error:  # an int beyond any float
            raise AnswerError(item.id, "not_a_number", str(raw)[:40]) from error
    else:
        text = str(raw).strip().replace("\u2212", "-").replace(" ", "").replace("\u00a0", "")
        if not _NUMBER.match(text):
            raise AnswerError(item.id, "not_a_number", str(raw))
        number = float(text.replace(",", "."))
    if math.isnan(number) or math.isinf(number):
        raise AnswerError(item.id, "not_a_number", str(raw))
    return number


def _code_text(code: int | str) -> str:
    return str(code)


def canonical(spec: InstrumentSpec, item: Item, raw: object) -> StoredAnswer | None:
    """The stored form of ``raw`` for ``item``; ``None`` for an empty answer.

    Raises :class:`AnswerError` with code ``not_an_option``, ``not_a_number``,
    ``not_an_integer``, ``out_of_range``, ``not_a_date``, ``too_long``.
    """
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if isinstance(raw, float) and math.isnan(raw):
        return None
    kind = item.type
    if kind == "single_choice":
        codes = {_code_text(o.code): o.code for o in spec.options_for(item)}
        text = _normalise_code(raw)
        if text not in codes:
            raise AnswerError(item.id, "not_an_option", str(raw))
        code = codes[text]
        return StoredAnswer(text, float(code) if isinstance(code, int) else None)
    if kind == "multiple_choice":
        values = raw if isinstance(raw, list | tuple | set) else str(raw).split(MULTI_SEPARATOR)
        chosen = {_normalise_code(v) for v in values if str(v).strip() != ""}
        if not chosen:
            return None
        order = [_code_text(o.code) for o in spec.options_for(item)]
        unknown = chosen - set(order)
        if unknown:
            raise AnswerError(item.id, "not_an_option", ", ".join(sorted(unknown)))
        return StoredAnswer(MULTI_SEPARATOR.join(c for c in order if c in chosen), None)
    if kind in {"integer", "scale_0_10"}:
        number = _as_number(item, raw)
        if number != int(number):
            raise AnswerError(item.id, "not_an_integer", str(raw))
        _check_range(item, number)
        return StoredAnswer(str(int(number)), float(int(number)))
    if kind == "decimal":
        number = _as_number(item, raw)
        _check_range(item, number)
        text = _format_decimal(number)
        return StoredAnswer(text, float(text))  # the number exactly as stored in the text
    if kind == "yes_no":
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "kyllä", "ja", "y"}:
            return StoredAnswer("1", 1.0)
        if text in {"0", "false", "no", "ei", "nej", "n"}:
            return StoredAnswer("0", 0.0)
        raise AnswerError(item.id, "not_an_option", str(raw))
    if kind == "date":
        try:
            if isinstance(raw, datetime):  # spreadsheets give dates as datetimes
                day = raw.date()
            else:
                day = raw if isinstance(raw, date) else date.fromisoformat(str(raw).strip())
        except ValueError as error:
            raise AnswerError(item.id, "not_a_date", str(raw)) from error
        return StoredAnswer(day.isoformat(), None)
    # free text: line breaks as \n, no control characters (a NUL cannot even be stored)
    text = _CONTROL.sub("", str(raw).replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        return None
    limit = item.max_length or DEFAULT_TEXT_LIMIT
    if len(text) > limit:
        raise AnswerError(item.id, "too_long", str(limit))
    return StoredAnswer(free_text(text), None)


def free_text(text: str) -> str:
    """Free text as it may be stored: a personal identity code typed into it (any century
    sign, valid check character or not) is masked (``131052-308T`` → ``******-****``), so it
    never reaches the database, exports, PDFs or pages. :func:`canonical` applies this to every
    text answer; any other path that stores typed text calls it too."""
    return mask_identity_codes(text)


def _normalise_code(raw: object) -> str:
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    text = str(raw).strip()
    if re.fullmatch(r"[+-]?\d+\.0+", text):
        return text.split(".")[0]
    return text


def _format_decimal(number: float) -> str:
    """Plain decimal notation (never an exponent, which the number parser would refuse),
    at most ten decimals."""
    text = f"{number:.10f}".rstrip("0").rstrip(".")
    return "0" if text in {"", "-0"} else text


def _check_range(item: Item, number: float) -> None:
    bounds = item.value_range
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        raise AnswerError(
            item.id, "out_of_range", f"{_format_decimal(bounds[0])}–{_format_decimal(bounds[1])}"
        )


# -- conditional display ---------------------------------------------------------------------


def _condition_met(condition: EnableWhen, answers: Mapping[str, str]) -> bool:
    stored = answers.get(condition.item)
    if condition.operator == "exists":
        wanted = True if condition.value is None else bool(condition.value)
        return (stored is not None) == wanted
    if stored is None:
        return False
    expected = condition.value
    if isinstance(expected, bool):
        expected = "1" if expected else "0"
    values = stored.split(MULTI_SEPARATOR)
    if condition.operator in {"=", "!="}:
        hit = any(_same(v, expected) for v in values)
        return hit if condition.operator == "=" else not hit
    try:
        left = float(stored)
        right = float(expected)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return {
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[condition.operator]


def _same(stored: str, expected: object) -> bool:
    if stored == str(expected):
        return True
    try:
        return float(stored) == float(expected)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def is_enabled(item: Item, answers: Mapping[str, str]) -> bool:
    """Whether ``item`` is shown, given the stored answers (item id → stored value)."""
    if not item.enable_when:
        return True
    results = [_condition_met(c, answers) for c in item.enable_when]
    return all(results) if item.enable_behavior == "all" else any(results)


def enabled_item_ids(spec: InstrumentSpec, answers: Mapping[str, str]) -> list[str]:
    """Shown items in order; an item is hidden when it depends on a hidden item's answer."""
    shown: list[str] = []
    visible_answers: dict[str, str] = {}
    for item in spec.items:
        if is_enabled(item, visible_answers):
            shown.append(item.id)
            if item.id in answers:
                visible_answers[item.id] = answers[item.id]
    return shown


def missing_required(spec: InstrumentSpec, answers: Mapping[str, str]) -> list[str]:
    """Required, shown items without an answer, in questionnaire order."""
    shown = set(enabled_item_ids(spec, answers))
    return [
        item.id
        for item in spec.items
        if item.required and item.id in shown and answers.get(item.id) is None
    ]


def display_value(spec: InstrumentSpec, item: Item, value: str | None, language: str) -> str:
    """A stored answer as the respondent saw it (option texts rather than codes)."""
    if value is None:
        return ""
    if item.type in {"single_choice", "multiple_choice"}:
        texts = {_code_text(o.code): o.text.get(language) for o in spec.options_for(item)}
        return "; ".join(texts.get(code, code) for code in value.split(MULTI_SEPARATOR))
    if item.type == "yes_no":
        return {
            "fi": {"1": "Kyllä", "0": "Ei"},
            "sv": {"1": "Ja", "0": "Nej"},
            "en": {"1": "Yes", "0": "No"},
        }.get(language, {}).get(value, value)
    if item.type == "decimal" and language in {"fi", "sv"}:
        return value.replace(".", ",") + (f" {item.unit}" if item.unit else "")
    if item.unit:
        return f"{value} {item.unit}"
    return value


def answers_by_item(rows: Iterable[tuple[str, str]]) -> dict[str, str]:
    return dict(rows)
