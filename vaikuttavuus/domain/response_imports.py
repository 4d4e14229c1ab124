"""Questionnaire answers from another system: the checks of the ``responses`` import kind.

A file holds one row per person, time point and instrument: the fixed columns of
``SCHEMAS["responses"]`` (person, ``time_point``, ``instrument``, ``completed_on``, optional
``instrument_version``, ``mode``, ``proxy``, ``language``) and one column per item id holding
the answer as its code (the same text as the patient form stores: choice codes, numbers, ISO
dates, several codes joined by ``;``, yes/no as ``1``/``0`` or ``yes``/``no``, free text). A
FHIR ``Bundle`` is turned into the same table first
(:func:`vaikuttavuus.fhir.read_response_bundle`).

The reading, the fixed columns and the people are checked by
:func:`vaikuttavuus.domain.imports.validate`; :func:`finish` adds what is particular to answers:

* the time point schedules the instrument (``not_scheduled``) and the version is one that was
  loaded (``unknown_code``; empty = the current version);
* every answer fits its item in that version (:func:`vaikuttavuus.domain.answers.canonical`:
  a code outside the answer set is ``unknown_code``; numbers, dates and text lengths as on the
  patient form), and answers only items of the row's instrument (``not_in_instrument``);
* **missing items** — a row without any answer is refused (``no_answers``). A required item
  that is shown but unanswered does not refuse the row: the response is stored as given
  (incomplete), exactly like a paper form with a skipped question, and each score follows its
  instrument's missing-item rule — a ``sum`` with rule ``all`` (IPSS total), an ``item`` score
  or a value set (EQ-5D-5L index) is then not computed, a rule ``available``/``prorate``
  within ``max_missing`` (DJG total, PREM means) still is. Such rows are reported as notes
  (``incomplete``: the unanswered items and the scores that cannot be computed), not errors;
* the date falls within the time point's window around the enrolment's index date
  (``outside_window``), unless the import allows answers outside the window;
* one response per person, time point and instrument in the file (``duplicate``) and in the
  database: a submitted response given again with the same version, date, mode, proxy and
  answers is *already stored*; with anything different it is a ``conflict`` (a submitted
  response is never changed by an import). A response the person started but did not send is
  replaced by the imported one.

Pure: pandas, numpy and the domain modules; the database look-ups come in through the
:class:`~vaikuttavuus.domain.imports.ImportContext`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus.domain.answers import AnswerError, canonical, enabled_item_ids
from vaikuttavuus.domain.imports import (
    _NAT_DAY,
    MAX_ALLOWED_SHOWN,
    SCHEMAS,
    ImportContext,
    RawTable,
    ResponseKey,
    Validation,
    _Check,
    _Errors,
    _flag_repeats,
    _iso,
    _People,
    _per_value,
)
from vaikuttavuus.domain.scoring import scorable_items, score_frame
from vaikuttavuus.domain.specs import (
    AggregateScore,
    InstrumentSpec,
    Item,
    ItemScore,
    PilotSpec,
    ValueSetScore,
)

__all__ = [
    "ANSWER_COLUMNS",
    "DEFAULT_LANGUAGE",
    "DEFAULT_MODE",
    "RESPONSE_COLUMNS",
    "example_row",
    "finish",
    "item_columns",
    "template_header",
]

DEFAULT_MODE = "imported"
DEFAULT_LANGUAGE = "fi"
FIXED_COLUMNS = frozenset(SCHEMAS["responses"].header)
RESPONSE_COLUMNS = (
    "enrolment_id",
    "time_point",
    "instrument",
    "version",
    "completed_on",
    "mode",
    "proxy",
    "language",
    "replaces",
)
"""Columns of :attr:`Validation.frame` for responses (index: the line)."""
ANSWER_COLUMNS = ("line", "item_id", "value", "value_num")
"""Columns of :attr:`Validation.answers`: the line of the response, the item and the answer
as stored."""

_ANSWER_ERRORS = {
    "not_an_option": "unknown_code",
    "not_a_number": "not_a_number",
    "not_an_integer": "not_an_integer",
    "out_of_range": "out_of_range",
    "not_a_date": "not_a_date",
    "too_long": "too_long",
}
_FINNISH_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


def item_columns(context: ImportContext) -> frozenset[str]:
    """Every item id of every version of the pilot's instruments (the file's item columns).
    A fixed column's name is never an item column."""
    codes = set(context.pilot.instrument_ids)
    return frozenset(
        item.id
        for code, versions in context.instruments.items()
        if code in codes
        for spec in versions.values()
        for item in spec.items
        if item.id not in FIXED_COLUMNS
    )


def _score_inputs(score: object) -> tuple[str, ...]:
    if isinstance(score, AggregateScore):
        return score.items
    if isinstance(score, ItemScore):
        return (score.item,)
    if isinstance(score, ValueSetScore):
        return score.dimensions
    return ()


def _answer_text(item: Item, text: str) -> str:
    """A date item also takes ``D.M.YYYY``, as the file's own dates do."""
    if item.type == "date":
        match = _FINNISH_DATE.match(text.strip())
        if match:
            day, month, year = (int(part) for part in match.groups())
            try:
                return date(year, month, day).isoformat()
            except ValueError:
                return text
    return text


class _Answer:
    """One distinct (version, item, text): its stored form, or the error it gives."""

    __slots__ = ("code", "number", "params", "value")

    def __init__(self, spec: InstrumentSpec | None, item_id: str, text: str) -> None:
        self.value: str | None = None
        self.number = np.nan
        self.code: str | None = None
        self.params: dict[str, Any] = {}
        if spec is None:
            return
        if item_id not in spec.item_ids:
            self.code = "not_in_instrument"
            self.params = {"instrument": spec.id}
            return
        item = spec.item(item_id)
        try:
            stored = canonical(spec, item, _answer_text(item, text))
        except AnswerError as error:
            self.code = _ANSWER_ERRORS.get(error.code, "unknown_code")
            if self.code == "unknown_code":
                allowed = [str(option.code) for option in spec.options_for(item)]
                if item.type == "yes_no":
                    allowed = ["yes", "no"]
                self.params = {
                    "allowed": allowed[:MAX_ALLOWED_SHOWN],
                    "more": len(allowed) > MAX_ALLOWED_SHOWN,
                }
            elif self.code == "out_of_range" and item.value_range is not None:
                self.params = {"min": item.value_range[0], "max": item.value_range[1]}
            elif self.code == "too_long":
                self.params = {"max": int(error.detail) if error.detail.isdigit() else None}
            return
        if stored is not None:
            self.value = stored.value
            self.number = np.nan if stored.value_num is None else float(stored.value_num)


def finish(check: _Check, people: _People, max_errors: int) -> Validation:
    """The checks particular to answers, after the fixed columns and the people (see the
    module docstring); returns the responses to store (``frame``, columns
    :data:`RESPONSE_COLUMNS`) and their answers (``answers``, :data:`ANSWER_COLUMNS`)."""
    context = check.context
    pilot = context.pilot
    errors = check.errors
    values = check.values
    n = check.n
    time_point = values["time_point"].to_numpy(dtype=object)
    instrument = values["instrument"].to_numpy(dtype=object)

    # the time point schedules the instrument
    schedule = {tp.id: tp.instruments for tp in pilot.time_points}
    pair_known = pd.notna(time_point) & pd.notna(instrument)
    scheduled = np.array(
        [
            bool(known) and code in schedule.get(str(tp), ())
            for known, tp, code in zip(pair_known, time_point, instrument, strict=True)
        ],
        dtype=bool,
    )
    errors.add(
        pair_known & ~scheduled,
        "instrument",
        "not_scheduled",
        lambda positions: [
            {"time_point": time_point[p], "instruments": list(schedule[str(time_point[p])])}
            for p in positions
        ],
    )

    # the instrument version (empty: the current one)
    given = values["instrument_version"].to_numpy(dtype=object)
    version = np.where(
        pd.isna(given),
        _per_value(instrument, context.current_versions.get, None),
        given,
    ).astype(object)
    versions_of = {code: sorted(found) for code, found in context.instruments.items()}
    loaded = np.array(
        [
            code is not None and v is not None and v in context.instruments.get(str(code), {})
            for code, v in zip(instrument, version, strict=True)
        ],
        dtype=bool,
    )
    errors.add(
        pd.notna(instrument) & pd.notna(given) & ~loaded,
        "instrument_version",
        "unknown_code",
        lambda positions: [{"allowed": versions_of.get(str(instrument[p]), [])} for p in positions],
    )
    usable = scheduled & loaded
    version_key = np.full(n, None, dtype=object)
    version_key[usable] = [
        f"{code}@{v}" for code, v in zip(instrument[usable], version[usable], strict=True)
    ]
    specs: dict[str, InstrumentSpec] = {
        f"{code}@{v}": spec
        for code, found in context.instruments.items()
        for v, spec in found.items()
    }

    mode = values["mode"].fillna(DEFAULT_MODE).to_numpy(dtype=object)
    proxy = values["proxy"].fillna(False).to_numpy(dtype=bool)
    language = values["language"].fillna(DEFAULT_LANGUAGE).to_numpy(dtype=object)
    day = values["completed_on"].to_numpy()

    # the date within the time point's window
    windows = {tp.id: (tp.window_open_days, tp.window_close_days) for tp in pilot.time_points}
    opens = _per_value(time_point, lambda t: windows[t][0], 0, "int64")
    closes = _per_value(time_point, lambda t: windows[t][1], 0, "int64")
    index_day = people.index_day
    dated = pd.notna(time_point) & (index_day != _NAT_DAY) & (day != _NAT_DAY)
    offset = np.where(dated, day - np.where(dated, index_day, 0), 0)
    outside = dated & ((offset < opens) | (offset > closes))
    if not context.allow_outside_window:
        errors.add(
            outside,
            "completed_on",
            "outside_window",
            lambda positions: [
                {
                    "time_point": time_point[p],
                    "start": _iso(np.array([index_day[p] + opens[p]]))[0],
                    "end": _iso(np.array([index_day[p] + closes[p]]))[0],
                }
                for p in positions
            ],
        )

    # the answers, one item column at a time (each distinct version, item and text once)
    columns = [c for c in check.raw.columns if c not in FIXED_COLUMNS]
    answer_value: dict[str, np.ndarray] = {}
    answer_number: dict[str, np.ndarray] = {}
    has_version = pd.notna(version_key)
    for column in columns:
        cells = check.cells(column)
        given_cell = (cells != "") & has_version
        value = np.full(n, None, dtype=object)
        number = np.full(n, np.nan)
        if given_cell.any():
            keys = version_key[given_cell] + "\x1f" + cells[given_cell]
            codes, uniques = pd.factorize(keys)
            found = []
            for key in uniques:
                spec_key, text = str(key).split("\x1f", 1)
                found.append(_Answer(specs.get(spec_key), column, text))
            where = np.flatnonzero(given_cell)
            value[where] = np.array([a.value for a in found], dtype=object)[codes]
            number[where] = np.array([a.number for a in found], dtype="float64")[codes]
            problem = np.array([a.code for a in found], dtype=object)[codes]
            for code in sorted({str(c) for c in pd.unique(problem[pd.notna(problem)])}):
                mask = np.zeros(n, dtype=bool)
                mask[where[problem == code]] = True
                at = np.full(n, -1, dtype="int64")
                at[where] = codes

                def params(
                    positions: np.ndarray, at: np.ndarray = at, found: list[_Answer] = found
                ) -> list[dict[str, Any]]:
                    return [found[int(at[p])].params for p in positions]

                errors.add(mask, column, code, params)
        answer_value[column] = value
        answer_number[column] = number

    notes = _Errors(RawTable(check.raw))
    _check_completeness(check, notes, version_key, specs, columns, answer_value, answer_number)

    # one response per person, time point and instrument: in the file, then in the database
    enrolment_id = np.nan_to_num(people.enrolment_id).astype("int64")
    candidates = np.flatnonzero(~errors.bad)
    response_key = np.array(
        [f"{enrolment_id[p]}\x1f{time_point[p]}\x1f{instrument[p]}" for p in candidates],
        dtype=object,
    )
    repeated = _flag_repeats(check, candidates, response_key, None)
    candidates = candidates[~repeated]
    response_keys: list[ResponseKey] = [
        (int(enrolment_id[p]), str(time_point[p]), str(instrument[p])) for p in candidates
    ]
    stored = (
        context.stored_responses(list(dict.fromkeys(response_keys))) if response_keys else {}
    )
    already = np.zeros(n, dtype=bool)
    replaces = np.zeros(n, dtype=bool)
    conflicts: dict[int, dict[str, Any]] = {}
    for position, key in zip(candidates, response_keys, strict=True):
        previous = stored.get(key)
        if previous is None:
            continue
        if previous.status != "submitted":
            replaces[position] = True
            continue
        row_answers = {
            column: answer_value[column][position]
            for column in columns
            if answer_value[column][position] is not None
        }
        row_day = _iso(np.array([day[position]]))[0]
        stored_day = previous.completed_on.isoformat() if previous.completed_on else ""
        differs = [
            name
            for name, same in (
                ("version", previous.version == version[position]),
                ("answers", dict(previous.answers) == row_answers),
                ("completed_on", stored_day == row_day),
                ("mode", previous.mode == mode[position]),
                ("proxy", bool(previous.proxy) == bool(proxy[position])),
            )
            if not same
        ]
        if differs:
            conflicts[int(position)] = {
                "reason": "submitted",
                "differs": differs,
                "completed_on": previous.completed_on,
            }
        else:
            already[position] = True
    conflict = np.zeros(n, dtype=bool)
    conflict[list(conflicts)] = True
    errors.add(
        conflict,
        "instrument",
        "conflict",
        lambda positions: [conflicts[int(p)] for p in positions],
    )

    keep = np.flatnonzero(~errors.bad & ~already)
    index = check.index[keep]
    frame = pd.DataFrame(
        {
            "enrolment_id": enrolment_id[keep],
            "time_point": pd.Series(time_point[keep], index=index, dtype=object),
            "instrument": pd.Series(instrument[keep], index=index, dtype=object),
            "version": pd.Series(version[keep], index=index, dtype=object),
            "completed_on": day[keep].astype("datetime64[D]").astype("datetime64[s]"),
            "mode": pd.Series(mode[keep], index=index, dtype=object),
            "proxy": proxy[keep],
            "language": pd.Series(language[keep], index=index, dtype=object),
            "replaces": replaces[keep],
        },
        index=index,
    )
    return Validation(
        kind="responses",
        frame=frame,
        errors=errors.report(max_errors),
        error_count=errors.count,
        rows_total=n,
        rows_duplicate=int(already.sum()),
        answers=_answers_frame(check, keep, columns, answer_value, answer_number),
        notes=notes.report(max_errors),
        note_count=notes.count,
    )


def _answers_frame(
    check: _Check,
    keep: np.ndarray,
    columns: Sequence[str],
    answer_value: Mapping[str, np.ndarray],
    answer_number: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """One row per answer of the kept rows, in line order and then column order."""
    lines = check.index.to_numpy()
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for position, column in enumerate(columns):
        given = answer_value[column][keep]
        present = pd.notna(given)
        if not present.any():
            continue
        rows = keep[present]
        parts.append(
            (
                lines[rows],
                np.full(len(rows), position, dtype="int64"),
                np.full(len(rows), column, dtype=object),
                given[present],
                answer_number[column][keep][present],
            )
        )
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in ANSWER_COLUMNS})
    line, order, item, value, number = (np.concatenate(p) for p in zip(*parts, strict=True))
    sort = np.lexsort((order, line))
    return pd.DataFrame(
        {
            "line": line[sort].astype("int64"),
            "item_id": item[sort],
            "value": value[sort],
            "value_num": number[sort].astype("float64"),
        }
    )


def _check_completeness(
    check: _Check,
    notes: _Errors,
    version_key: np.ndarray,
    specs: Mapping[str, InstrumentSpec],
    columns: Sequence[str],
    answer_value: Mapping[str, np.ndarray],
    answer_number: Mapping[str, np.ndarray],
) -> None:
    """``no_answers`` (an error) and ``incomplete`` (a note: a required, shown item left
    unanswered, with the scores that its instrument's missing-item rules cannot compute
    without it), per instrument version."""
    errors = check.errors
    n = check.n
    # every row whose answers could be read (other problems of the row are reported too)
    checkable = pd.notna(version_key) & ~errors.failed(*columns)
    for key in pd.unique(version_key[checkable]):
        spec = specs[str(key)]
        rows = np.flatnonzero(checkable & (version_key == key))
        answered = {
            item.id: (
                pd.notna(answer_value[item.id][rows])
                if item.id in answer_value
                else np.zeros(len(rows), dtype=bool)
            )
            for item in spec.items
        }
        none = ~np.logical_or.reduce([answered[i.id] for i in spec.items])
        mask = np.zeros(n, dtype=bool)
        mask[rows[none]] = True
        errors.add(mask, "instrument", "no_answers", {"instrument": spec.id})
        shown = _shown(spec, rows, answer_value)
        missing = {
            item.id: shown[item.id] & ~answered[item.id] & ~none
            for item in spec.items
            if item.required
        }
        incomplete = np.logical_or.reduce([*missing.values(), np.zeros(len(rows), dtype=bool)])
        if not incomplete.any():
            continue
        numbers = pd.DataFrame(
            {
                item.id: answer_number[item.id][rows]
                if item.id in answer_number
                else np.full(len(rows), np.nan)
                for item in scorable_items(spec)
            }
        )
        scores = score_frame(spec, numbers)
        lost: dict[str, np.ndarray] = {}
        for score in spec.scores:
            inputs = [item for item in _score_inputs(score) if item in missing]
            if inputs and score.id in scores:
                needed = np.logical_or.reduce([missing[item] for item in inputs])
                lost[score.id] = scores[score.id].isna().to_numpy() & needed
        params: dict[int, dict[str, Any]] = {}
        first_item = np.full(len(rows), None, dtype=object)
        for local in np.flatnonzero(incomplete):
            items = [item for item, m in missing.items() if m[local]]
            first_item[local] = items[0]
            params[int(rows[local])] = {
                "instrument": spec.id,
                "items": items,
                "scores": [score for score, m in lost.items() if m[local]],
            }
        for item_id in pd.unique(first_item[incomplete]):
            mask = np.zeros(n, dtype=bool)
            mask[rows[first_item == item_id]] = True

            def item_params(
                positions: np.ndarray, params: dict[int, dict[str, Any]] = params
            ) -> list[dict[str, Any]]:
                return [params[int(p)] for p in positions]

            notes.add(mask, str(item_id), "incomplete", item_params)


def _shown(
    spec: InstrumentSpec, rows: np.ndarray, answer_value: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per item, whether it is shown to each row given its answers to the condition items
    (computed once per distinct combination of those answers)."""
    conditions = sorted({c.item for item in spec.items for c in item.enable_when})
    if not conditions:
        return {item.id: np.ones(len(rows), dtype=bool) for item in spec.items}
    given = {
        c: (answer_value[c][rows] if c in answer_value else np.full(len(rows), None, object))
        for c in conditions
    }
    keys = np.array(
        [
            "\x1f".join("" if v is None else str(v) for v in combo)
            for combo in zip(*(given[c] for c in conditions), strict=True)
        ],
        dtype=object,
    )
    codes, uniques = pd.factorize(keys)
    shown_sets = []
    for key in uniques:
        parts = str(key).split("\x1f")
        answers = {c: v for c, v in zip(conditions, parts, strict=True) if v != ""}
        shown_sets.append(frozenset(enabled_item_ids(spec, answers)))
    return {
        item.id: np.array([item.id in s for s in shown_sets], dtype=bool)[codes]
        for item in spec.items
    }


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


def template_header(specs: Sequence[InstrumentSpec]) -> tuple[str, ...]:
    """The fixed columns, then every item id of ``specs`` (instruments in the given order,
    items in questionnaire order; an id shared by two instruments once)."""
    items = dict.fromkeys(
        item.id for spec in specs for item in spec.items if item.id not in FIXED_COLUMNS
    )
    return (*SCHEMAS["responses"].header, *items)


def _example_answer(item: Item, spec: InstrumentSpec, day: str) -> str:
    if item.type in {"single_choice", "multiple_choice"}:
        options = spec.options_for(item)
        return str(options[len(options) // 2].code)
    if item.type == "yes_no":
        return "no"
    if item.type == "scale_0_10":
        return "8"
    if item.type in {"integer", "decimal"} and item.value_range is not None:
        low, high = item.value_range
        middle = (low + high) / 2
        return str(int(middle)) if item.type == "integer" else f"{middle:g}"
    if item.type == "date":
        return day
    return ""


def example_row(
    header: Sequence[str], pilot: PilotSpec, specs: Mapping[str, InstrumentSpec]
) -> tuple[str, ...]:
    """A valid example row for ``header``: the pilot's first instrument at its baseline, by
    paper, with an answer to every item that has a code (the person's index date decides
    whether the example date falls within the window)."""
    time_point = pilot.baseline
    code = time_point.instruments[0]
    spec = specs[code]
    completed = "2025-03-01"
    fixed = {
        "identity_code": SCHEMAS["responses"].column("identity_code").example,
        "pseudonym": "",
        "time_point": time_point.id,
        "instrument": code,
        "completed_on": completed,
        "instrument_version": spec.version,
        "mode": "paper",
        "proxy": "no",
        "language": DEFAULT_LANGUAGE,
    }
    answers = {item.id: _example_answer(item, spec, completed) for item in spec.items}
    return tuple(fixed.get(name, answers.get(name, "")) for name in header)
