"""Score questionnaire answers from an instrument definition, vectorised over responses.

The engine reads a *wide* frame — one row per response, one column per item id, numeric answer
codes, ``NaN`` for a missing answer — and returns one column per score of the instrument, in the
order the definition lists them:

* sums, means, item scores and value-set indices as ``float64`` (``NaN`` when not computable),
* bands as the pandas ``string`` dtype (``<NA>`` when not computable or outside every band),
* flags as the pandas nullable ``boolean`` dtype (``<NA>`` when their input is missing).

Every step is a whole-column numpy operation; there is no loop over rows, so one response and a
million responses take the same code path (:func:`score_answers` scores one response through a
one-row frame).

Answers are validated, not trusted: an answer that is not one of a choice item's codes, or a
number outside an item's ``min``–``max`` (or not a whole number for an integer item), raises
:class:`ScoringError` naming the item, the value and the row. Only the items that some score
reads are checked; other columns are ignored.

Rules (see :mod:`vaikuttavuus.domain.specs`):

* **recode** maps an answer code to the value that is scored; codes not in the map keep their
  own value, and a code mapped to ``NaN`` (``.nan`` in YAML, e.g. "don't know") counts as
  missing.
* **missing items**: ``all`` needs every item; ``prorate`` allows ``max_missing`` missing items
  and scales a sum up to the full item count (the mean of the answered items stands in for the
  missing ones); ``available`` allows ``max_missing`` missing items and uses the answered ones
  as they are. For a mean, ``prorate`` and ``available`` give the same value.
* **value sets**: index = 1 − constant·[any level > 1] − Σ decrement(dimension, level); level 1
  has decrement 0 unless the value set says otherwise; any missing dimension gives ``NaN``.
* **bands** are half-open: a band runs from its ``min`` up to the next band's ``min`` (not
  included), the last one up to its ``max`` (included), so a prorated 7.6 between the limits
  0–7 and 8–19 is in the lower band; a value below the first or above the last gives ``<NA>``.
* **flags** compare a score (or an item) with a number.

This module is pure: stdlib, numpy and pandas only; no web framework, database or file I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vaikuttavuus.domain.specs import (
    AggregateScore,
    BandScore,
    Code,
    FlagScore,
    InstrumentSpec,
    Item,
    ItemScore,
    LocalizedText,
    Score,
    ValueSet,
    ValueSetScore,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "ItemDomain",
    "ScoreInfo",
    "ScoringError",
    "band_positions",
    "item_domain",
    "long_to_wide",
    "scorable_items",
    "score_answers",
    "score_frame",
    "score_metadata",
    "score_names",
    "score_range",
]


class ScoringError(ValueError):
    """Answers (or a request) that cannot be scored, e.g. an answer code the item does not have.

    ``item``, ``value`` and ``row`` (the row's index label) are set when one answer is at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        item: str | None = None,
        value: object = None,
        row: object = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.item = item
        self.value = value
        self.row = row
        self.reason = reason or message
        """The message without the row, for callers that name the row their own way."""


# --------------------------------------------------------------------------------------------
# Item domains: which numeric answers an item accepts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemDomain:
    """The numeric answers an item accepts: a set of codes, or a closed interval."""

    item_id: str
    codes: tuple[float, ...] | None = None
    low: float | None = None
    high: float | None = None
    whole_numbers: bool = False

    def invalid(self, values: FloatArray) -> BoolArray:
        """True where a (non-missing) value is not an acceptable answer."""
        present = ~np.isnan(values)
        if self.codes is not None:
            allowed = np.isin(values, np.asarray(self.codes, dtype=np.float64))
            return present & ~allowed
        bad = ~np.isfinite(values)
        if self.low is not None:
            bad |= values < self.low
        if self.high is not None:
            bad |= values > self.high
        if self.whole_numbers:
            with np.errstate(invalid="ignore"):
                bad |= np.floor(values) != values
        return present & bad

    def describe(self) -> str:
        """The accepted answers in words, for error messages."""
        if self.codes is not None:
            return "one of " + ", ".join(_format_number(code) for code in self.codes)
        kind = "a whole number" if self.whole_numbers else "a number"
        return f"{kind} from {_format_number(self.low)} to {_format_number(self.high)}"

    @property
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest acceptable answer."""
        if self.codes is not None:
            return (min(self.codes), max(self.codes))
        return (
            -np.inf if self.low is None else self.low,
            np.inf if self.high is None else self.high,
        )


def item_domain(spec: InstrumentSpec, item: Item) -> ItemDomain | None:
    """The numeric answers ``item`` accepts, or ``None`` when its answer is not one number.

    Single-choice items take their (numeric) option codes, yes/no items 0 (no) and 1 (yes),
    ``scale_0_10`` the whole numbers 0–10, integer items the whole numbers from ``min`` to
    ``max`` and decimal items any number from ``min`` to ``max``. Multiple-choice, text and
    date items have no numeric value.
    """
    if item.type == "single_choice":
        codes = [_code_number(option.code) for option in spec.options_for(item)]
        if any(code is None for code in codes):
            return None
        return ItemDomain(item.id, codes=tuple(sorted(c for c in codes if c is not None)))
    if item.type == "yes_no":
        return ItemDomain(item.id, codes=(0.0, 1.0))
    if item.type in {"integer", "decimal", "scale_0_10"}:
        low, high = item.value_range or (None, None)
        return ItemDomain(item.id, low=low, high=high, whole_numbers=item.type != "decimal")
    return None


def scorable_items(spec: InstrumentSpec) -> tuple[Item, ...]:
    """The items whose answer is one number (the columns of a wide answers frame)."""
    return tuple(item for item in spec.items if item_domain(spec, item) is not None)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def score_frame(
    spec: InstrumentSpec, answers: pd.DataFrame, value_set: str | None = None
) -> pd.DataFrame:
    """Score every response (row) of ``answers`` with ``spec``'s scores.

    ``answers`` has one column per item id holding numeric codes (``NaN`` = missing); text
    columns holding numbers (``"3"``, ``"2,5"``; blank = missing) are read too. Columns that are
    not items are ignored and an item without a column counts as unanswered. ``value_set``
    chooses the value set of every value-set score (default: each score's
    ``default_value_set``).

    Returns a frame with the same index and one column per score, in the definition's order.
    Raises :class:`ScoringError` for an invalid answer or an unknown value set.
    """
    if not isinstance(answers, pd.DataFrame):
        raise TypeError(f"answers must be a pandas DataFrame, not {type(answers).__name__}")
    _check_value_set(spec, value_set)
    reader = _ItemReader(spec, answers)
    numeric: dict[str, FloatArray] = {}
    columns: dict[str, object] = {}
    for score in spec.scores:
        if isinstance(score, AggregateScore):
            values = _aggregate(score, reader)
            numeric[score.id] = values
            columns[score.id] = values
        elif isinstance(score, ItemScore):
            values = reader.values(score.item)
            values = _recode(values, score.recode) if score.recode else values.copy()
            numeric[score.id] = values
            columns[score.id] = values
        elif isinstance(score, ValueSetScore):
            values = _value_set_index(score, reader, value_set)
            numeric[score.id] = values
            columns[score.id] = values
        elif isinstance(score, BandScore):
            columns[score.id] = _band(score, _source(score.of, numeric, reader))
        else:
            columns[score.id] = _flag(score, _source(score.of, numeric, reader))
    return pd.DataFrame(columns, index=answers.index, columns=list(columns))


def score_answers(
    spec: InstrumentSpec, answers: Mapping[str, object], value_set: str | None = None
) -> dict[str, object]:
    """Score one response given as ``{item id: answer}``; values are plain Python objects.

    Answers may be numbers or numeric text; ``None``, ``NaN`` and blank text are missing; keys
    that are not scorable items are ignored. Runs through :func:`score_frame` on a one-row frame,
    so the rules are exactly those of the vectorised path. Numeric scores come back as
    ``float``, bands as ``str``, flags as ``bool``, and anything not computable as ``None``.
    """
    wanted = {item.id for item in scorable_items(spec)}
    row = {key: [value] for key, value in answers.items() if key in wanted}
    frame = pd.DataFrame(row, index=pd.RangeIndex(1))
    scored = score_frame(spec, frame, value_set=value_set)
    return {name: _plain(scored[name].iloc[0]) for name in scored.columns}


def _plain(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return str(value)


class _ItemReader:
    """Reads item columns once per call as validated ``float64`` arrays."""

    def __init__(self, spec: InstrumentSpec, answers: pd.DataFrame) -> None:
        self._spec = spec
        self._answers = answers
        self._cache: dict[str, FloatArray] = {}
        self._domains: dict[str, ItemDomain] = {}
        self._prepared: dict[tuple[str, tuple[tuple[Code, float | None], ...]], _Prepared] = {}
        self.rows = len(answers)

    def domain(self, item_id: str) -> ItemDomain:
        if item_id not in self._domains:
            item = self._spec.item(item_id)
            domain = item_domain(self._spec, item)
            if domain is None:
                raise ScoringError(
                    f"item '{item_id}' ({item.type}) has no numeric value to score", item=item_id
                )
            self._domains[item_id] = domain
        return self._domains[item_id]

    def values(self, item_id: str) -> FloatArray:
        if item_id in self._cache:
            return self._cache[item_id]
        domain = self.domain(item_id)
        item = self._spec.item(item_id)
        values = _numeric_column(self._answers, item_id, yes_no=item.type == "yes_no")
        bad = domain.invalid(values)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            row = self._answers.index[position]
            original = self._answers[item_id].iloc[position]
            reason = (
                f"item '{item_id}': {_format_value(original)} is not a valid answer "
                f"(expected {domain.describe()})"
            )
            raise ScoringError(
                f"row {row!r}: {reason}", item=item_id, value=original, row=row, reason=reason
            )
        self._cache[item_id] = values
        return values

    def prepared(self, item_id: str, recode: Mapping[Code, float | None] | None) -> _Prepared:
        """The item's (recoded) values, cached per recode."""
        key = (item_id, tuple(sorted(recode.items(), key=str)) if recode else ())
        if key not in self._prepared:
            values = self.values(item_id)
            self._prepared[key] = _Prepared(_recode(values, recode) if recode else values)
        return self._prepared[key]


class _Prepared:
    """An item's scored values with its missing mask and a copy where missing is 0 (lazy)."""

    def __init__(self, values: FloatArray) -> None:
        self.values = values
        self._missing: BoolArray | None = None
        self._filled: FloatArray | None = None

    @property
    def missing(self) -> BoolArray:
        if self._missing is None:
            self._missing = np.isnan(self.values)
        return self._missing

    @property
    def filled(self) -> FloatArray:
        if self._filled is None:
            self._filled = self.values.copy()
            np.copyto(self._filled, 0.0, where=self.missing)
        return self._filled


def _numeric_column(answers: pd.DataFrame, item_id: str, *, yes_no: bool) -> FloatArray:
    """The column ``item_id`` as float64 (``NaN`` = missing); all-missing if absent."""
    if item_id not in answers.columns:
        return np.full(len(answers), np.nan)
    column = answers[item_id]
    if isinstance(column, pd.DataFrame):
        raise ScoringError(f"the answers have more than one column named '{item_id}'", item=item_id)
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed, unreadable = _parse_numbers(column, yes_no=yes_no)
    if unreadable.any():
        position = int(np.flatnonzero(unreadable)[0])
        original = column.iloc[position]
        row = answers.index[position]
        reason = f"item '{item_id}': {_format_value(original)} is not a number"
        raise ScoringError(
            f"row {row!r}: {reason}", item=item_id, value=original, row=row, reason=reason
        )
    return parsed


_BOOLEAN_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


def _parse_numbers(values: pd.Series, *, yes_no: bool) -> tuple[FloatArray, BoolArray]:
    """Parse text answers as numbers: blank → missing, decimal comma allowed.

    With ``yes_no`` the words true/false/yes/no are 1/0. Returns the values and a mask of
    non-blank entries that are not numbers.
    """
    text = values.astype("string").str.strip()
    blank = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
    numbers = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    parsed = pd.Series(numbers, index=values.index).to_numpy(dtype=np.float64, na_value=np.nan)
    if yes_no:
        words = text.str.lower().map(_BOOLEAN_WORDS)
        word_values = pd.Series(words, index=values.index).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        parsed = np.where(np.isnan(parsed), word_values, parsed)
    parsed = np.where(blank, np.nan, parsed)
    unreadable = ~blank & np.isnan(parsed)
    return parsed, unreadable


def _check_value_set(spec: InstrumentSpec, value_set: str | None) -> None:
    if value_set is None:
        return
    for score in spec.scores:
        if isinstance(score, ValueSetScore) and value_set not in score.value_sets:
            known = ", ".join(sorted(score.value_sets))
            raise ScoringError(
                f"unknown value set '{value_set}' for {spec.id} score '{score.id}' (known: {known})"
            )


def _aggregate(score: AggregateScore, reader: _ItemReader) -> FloatArray:
    n_items = len(score.items)
    total = np.zeros(reader.rows)
    if score.missing.rule == "all":
        # NaN propagates through the sum: any missing item leaves the score missing
        for item_id in score.items:
            total += reader.prepared(item_id, score.recode.get(item_id)).values
        return total / n_items if score.method == "mean" else total
    n_missing = np.zeros(reader.rows, dtype=np.uint8 if n_items < 256 else np.int64)
    for item_id in score.items:
        prepared = reader.prepared(item_id, score.recode.get(item_id))
        total += prepared.filled
        np.add(n_missing, prepared.missing.view(np.uint8), out=n_missing, casting="unsafe")
    answered = n_items - n_missing.astype(np.int64)
    denominator = np.maximum(answered, 1)
    if score.method == "mean":
        result = total / denominator
    elif score.missing.rule == "prorate":
        result = total * (n_items / denominator)
    else:
        result = total
    np.copyto(
        result, np.nan, where=(answered < n_items - score.missing.max_missing) | (answered == 0)
    )
    return result


def _recode(values: FloatArray, mapping: Mapping[Code, float | None]) -> FloatArray:
    """Replace each code found in ``mapping`` by its value (vectorised lookup)."""
    keys = np.array([_required_number(code) for code in mapping], dtype=np.float64)
    targets = np.array(
        [np.nan if value is None else value for value in mapping.values()], dtype=np.float64
    )
    order = np.argsort(keys)
    keys, targets = keys[order], targets[order]
    position = np.clip(np.searchsorted(keys, values), 0, len(keys) - 1)
    hit = keys[position] == values
    return np.where(hit, targets[position], values)


def _value_set_index(
    score: ValueSetScore, reader: _ItemReader, value_set: str | None
) -> FloatArray:
    chosen = value_set or score.default_value_set
    weights = score.value_sets[chosen]
    decrements = np.zeros(reader.rows)
    any_problem = np.zeros(reader.rows, dtype=bool)
    any_missing = np.zeros(reader.rows, dtype=bool)
    for dimension in score.dimensions:
        values = reader.values(dimension)
        table = _decrement_table(weights, chosen, dimension, reader.domain(dimension))
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):  # NaN casts to garbage; reset just below
            level = values.astype(np.intp, copy=True)
        np.copyto(level, 1, where=missing)
        decrements += table[level]
        any_problem |= level > 1
        any_missing |= missing
    index = 1.0 - weights.constant * any_problem - decrements
    np.copyto(index, np.nan, where=any_missing)
    return index


def _decrement_table(
    weights: ValueSet, name: str, dimension: str, domain: ItemDomain
) -> FloatArray:
    """Decrement by level for one dimension, indexable by the level itself."""
    if domain.codes is None or any(c < 1 or c != int(c) for c in domain.codes):
        raise ScoringError(
            f"value set '{name}': dimension '{dimension}' must be an item with whole-number "
            "levels from 1 upwards",
            item=dimension,
        )
    levels = [int(code) for code in domain.codes]
    table = np.full(max(levels) + 1, np.nan)
    by_level = weights.decrements.get(dimension, {})
    for level in levels:
        if level in by_level:
            table[level] = by_level[level]
        elif level == 1:
            table[level] = 0.0
        else:
            raise ScoringError(
                f"value set '{name}' has no decrement for '{dimension}' level {level}",
                item=dimension,
            )
    return table


def _source(name: str, numeric: Mapping[str, FloatArray], reader: _ItemReader) -> FloatArray:
    """An earlier numeric score, or else an item's answers."""
    if name in numeric:
        return numeric[name]
    return reader.values(name)


def _band(score: BandScore, values: FloatArray) -> pd.api.extensions.ExtensionArray:
    labels = np.array([band.label for band in score.ordered] + [None], dtype=object)
    return pd.array(labels[band_positions(score, values)], dtype=pd.StringDtype())


def band_positions(score: BandScore, values: npt.ArrayLike) -> np.ndarray:
    """Per value, the position of its band in :attr:`BandScore.ordered` (half-open intervals,
    see the module docstring), or ``len(bands)`` for a value in no band (NaN included)."""
    x = np.asarray(values, dtype=np.float64)
    bands = score.ordered  # they do not overlap
    lows = np.array([band.min for band in bands], dtype=np.float64)
    position = np.searchsorted(lows, x, side="right") - 1
    inside = (position >= 0) & (x <= bands[-1].max)  # False for NaN
    np.copyto(position, len(bands), where=~inside)
    return position


_COMPARISONS: dict[str, Callable[[FloatArray, float], BoolArray]] = {
    "=": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
}


def _flag(score: FlagScore, values: FloatArray) -> pd.arrays.BooleanArray:
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        result = _COMPARISONS[score.operator](values, score.value)
    return pd.arrays.BooleanArray(np.where(missing, False, result), missing)


# --------------------------------------------------------------------------------------------
# Long → wide
# --------------------------------------------------------------------------------------------


def long_to_wide(long: pd.DataFrame, spec: InstrumentSpec) -> pd.DataFrame:
    """Turn long answers (``response_id``, ``item_id``, ``value``) into a wide numeric frame.

    The result is indexed by ``response_id`` (every response in ``long``, in order of first
    appearance) with one ``float64`` column per scorable item of ``spec`` (in questionnaire
    order). Values may be numbers or text; text that is not a number becomes ``NaN`` (for yes/no
    items true/false/yes/no are read as 1/0), as do rows for other items. Answers are not
    range-checked here; :func:`score_frame` does that. Two answers to the same item in one
    response raise :class:`ScoringError`.
    """
    needed = {"response_id", "item_id", "value"}
    missing_columns = needed - set(long.columns)
    if missing_columns:
        raise ScoringError(f"the long answers lack the column(s) {sorted(missing_columns)}")
    items = scorable_items(spec)
    item_ids = [item.id for item in items]
    responses = pd.Index(pd.unique(long["response_id"]), name="response_id")
    rows = long.loc[long["item_id"].isin(item_ids), ["response_id", "item_id", "value"]]
    repeated = rows.duplicated(["response_id", "item_id"], keep=False)
    if repeated.any():
        first = rows[repeated].iloc[0]
        raise ScoringError(
            f"response {first['response_id']!r} has more than one answer to item "
            f"'{first['item_id']}'",
            item=str(first["item_id"]),
            row=first["response_id"],
        )
    values = _long_values(rows, {item.id for item in items if item.type == "yes_no"})
    tidy = pd.DataFrame(
        {
            "response_id": rows["response_id"].to_numpy(),
            "item_id": rows["item_id"].to_numpy(),
            "value": values,
        }
    )
    if tidy.empty:
        wide = pd.DataFrame(np.nan, index=responses, columns=item_ids, dtype=np.float64)
    else:
        wide = tidy.pivot(index="response_id", columns="item_id", values="value")
        wide = wide.reindex(index=responses, columns=item_ids).astype(np.float64)
    wide.columns = pd.Index(item_ids)
    wide.index.name = "response_id"
    return wide


def _long_values(rows: pd.DataFrame, yes_no_items: set[str]) -> FloatArray:
    value = rows["value"]
    if pd.api.types.is_bool_dtype(value.dtype) or pd.api.types.is_numeric_dtype(value.dtype):
        return value.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed, _ = _parse_numbers(value, yes_no=False)
    if yes_no_items:
        is_yes_no = rows["item_id"].isin(yes_no_items).to_numpy()
        if is_yes_no.any():
            as_words, _ = _parse_numbers(value, yes_no=True)
            parsed = np.where(is_yes_no, as_words, parsed)
    return parsed


# --------------------------------------------------------------------------------------------
# Metadata for reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreInfo:
    """What a report needs to know about one score."""

    id: str
    method: str
    kind: Literal["number", "band", "flag"]
    label: LocalizedText | None
    range: tuple[float, float] | None
    direction: Literal["lower_is_better", "higher_is_better"] | None
    minimal_important_change: float | None
    bands: tuple[str, ...] = ()
    value_sets: tuple[str, ...] = ()

    def label_in(self, language: str) -> str:
        """The label in ``language`` (Finnish for an unknown code), or the id if unlabelled."""
        return self.label.get(language) if self.label is not None else self.id


def score_names(spec: InstrumentSpec) -> tuple[str, ...]:
    """The score ids of ``spec`` in definition order (the columns of :func:`score_frame`)."""
    return tuple(score.id for score in spec.scores)


def score_metadata(spec: InstrumentSpec, value_set: str | None = None) -> tuple[ScoreInfo, ...]:
    """Label, range, direction and minimal important change of every score, in order."""
    infos: list[ScoreInfo] = []
    for score in spec.scores:
        kind: Literal["number", "band", "flag"] = "number"
        bands: tuple[str, ...] = ()
        value_sets: tuple[str, ...] = ()
        if isinstance(score, BandScore):
            kind = "band"
            bands = tuple(band.label for band in score.bands)
        elif isinstance(score, FlagScore):
            kind = "flag"
        elif isinstance(score, ValueSetScore):
            value_sets = tuple(score.value_sets)
        infos.append(
            ScoreInfo(
                id=score.id,
                method=score.method,
                kind=kind,
                label=score.label,
                range=score_range(spec, score, value_set=value_set),
                direction=score.direction,
                minimal_important_change=score.minimal_important_change,
                bands=bands,
                value_sets=value_sets,
            )
        )
    return tuple(infos)


def score_range(
    spec: InstrumentSpec, score: Score, value_set: str | None = None
) -> tuple[float, float] | None:
    """The declared ``range`` of a numeric score, or the range its rules can produce.

    Bands and flags have no numeric range (``None``).
    """
    if isinstance(score, AggregateScore | ItemScore) and score.range is not None:
        return (float(score.range[0]), float(score.range[1]))
    return derived_range(spec, score, value_set=value_set)


def derived_range(
    spec: InstrumentSpec, score: Score, value_set: str | None = None
) -> tuple[float, float] | None:
    """The smallest and largest value a numeric score's rules can produce."""
    if isinstance(score, ItemScore):
        return _value_bounds(spec, score.item, score.recode)
    if isinstance(score, AggregateScore):
        bounds = [_value_bounds(spec, item, score.recode.get(item, {})) for item in score.items]
        lows = sorted(low for low, _ in bounds)
        highs = sorted((high for _, high in bounds), reverse=True)
        n_items = len(score.items)
        allowed = 0 if score.missing.rule == "all" else score.missing.max_missing
        counts = range(n_items - allowed, n_items + 1)
        if score.method == "mean":
            return (
                min(sum(lows[:count]) / count for count in counts),
                max(sum(highs[:count]) / count for count in counts),
            )
        if score.missing.rule == "prorate":
            return (
                min(sum(lows[:count]) * n_items / count for count in counts),
                max(sum(highs[:count]) * n_items / count for count in counts),
            )
        return (
            min(sum(lows[:count]) for count in counts),
            max(sum(highs[:count]) for count in counts),
        )
    if isinstance(score, ValueSetScore):
        weights = score.value_sets[value_set or score.default_value_set]
        worst = 0.0
        best = 0.0
        for dimension in score.dimensions:
            domain = item_domain(spec, spec.item(dimension))
            levels = domain.codes if domain is not None and domain.codes is not None else (1.0,)
            by_level = weights.decrements.get(dimension, {})
            per_level = [by_level.get(int(level), 0.0) for level in levels]
            worst += max(per_level)
            best += by_level.get(1, 0.0)
        return (1.0 - weights.constant - worst, 1.0 - best)
    return None


def _value_bounds(
    spec: InstrumentSpec, item_id: str, recode: Mapping[Code, float | None]
) -> tuple[float, float]:
    domain = item_domain(spec, spec.item(item_id))
    if domain is None:  # the spec validator only lets scores read numeric items
        raise ScoringError(f"item '{item_id}' has no numeric value to score", item=item_id)
    mapping = {
        _required_number(code): np.nan if value is None else value for code, value in recode.items()
    }
    if domain.codes is not None:
        values = [mapping.get(code, code) for code in domain.codes]
    else:
        values = [*domain.bounds, *mapping.values()]
    finite = [value for value in values if not np.isnan(value)]
    return (min(finite), max(finite))


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _code_number(code: Code) -> float | None:
    if isinstance(code, int):
        return float(code)
    try:
        return float(code)
    except ValueError:
        return None


def _required_number(code: Code) -> float:
    number = _code_number(code)
    if number is None:
        raise ScoringError(f"recode key '{code}' is not a number")
    return number


def _format_number(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _format_value(value: object) -> str:
    """An answer as it was given: numbers plain, other text quoted."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, str):
        try:
            float(value.strip().replace(",", "."))
        except ValueError:
            return repr(value)
        return value.strip()
    return str(value)
