"""Frozen, validated specifications of instruments, pilots and cost catalogues.

These are the in-memory form of the declarative files in ``questionnaires/``, ``cohorts/`` and
``costing/``. They are pure data (pydantic models, frozen, unknown keys forbidden) so that the
scoring engine, the form builder, the scheduler and the analytics share one definition.
Reading files and turning validation errors into messages lives in
:mod:`vaikuttavuus.definitions`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vaikuttavuus.domain.defaults import LANGUAGES

DEFAULT_LANGUAGE = "fi"
IDENTIFIER = r"^[a-z][a-z0-9_]*$"
SLUG = r"^[a-z][a-z0-9_-]*$"


class Spec(BaseModel):
    """Base for every specification: immutable and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalizedText(Spec):
    """A text in every supported language (Finnish, Swedish, English)."""

    fi: str = Field(min_length=1)
    sv: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        """The text in ``language``, falling back to Finnish for an unknown code."""
        return str(getattr(self, language, None) or self.fi)


Code = int | str
ItemType = Literal[
    "single_choice",
    "multiple_choice",
    "integer",
    "decimal",
    "scale_0_10",
    "yes_no",
    "date",
    "text",
]
CHOICE_TYPES: frozenset[str] = frozenset({"single_choice", "multiple_choice"})
NUMERIC_TYPES: frozenset[str] = frozenset({"integer", "decimal", "scale_0_10"})
SCORABLE_TYPES: frozenset[str] = frozenset(
    {"single_choice", "integer", "decimal", "scale_0_10", "yes_no"}
)
"""Item types whose answer is one number (a numeric choice code, a count, a measure, 0/1)."""


class AnswerOption(Spec):
    code: Code
    text: LocalizedText


class EnableWhen(Spec):
    """Show an item only when an earlier item's answer satisfies this condition (FHIR style)."""

    item: str = Field(pattern=IDENTIFIER)
    operator: Literal["=", "!=", ">", ">=", "<", "<=", "exists"] = "="
    value: Code | float | bool | None = None

    @model_validator(mode="after")
    def _value_needed(self) -> EnableWhen:
        if self.operator != "exists" and self.value is None:
            raise ValueError("a value is required unless the operator is 'exists'")
        return self


class Item(Spec):
    id: str = Field(pattern=IDENTIFIER)
    type: ItemType
    text: LocalizedText
    help: LocalizedText | None = None
    required: bool = True
    options: tuple[AnswerOption, ...] | None = None
    answer_set: str | None = None
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    max_length: int | None = Field(default=None, gt=0)
    min_label: LocalizedText | None = None
    max_label: LocalizedText | None = None
    enable_when: tuple[EnableWhen, ...] = ()
    enable_behavior: Literal["all", "any"] = "all"

    @model_validator(mode="after")
    def _type_fields(self) -> Item:
        if self.type in CHOICE_TYPES:
            if (self.options is None) == (self.answer_set is None):
                raise ValueError("a choice item needs exactly one of 'options' or 'answer_set'")
        elif self.options is not None or self.answer_set is not None:
            raise ValueError(
                f"'options' and 'answer_set' are only for choice items, not {self.type}"
            )
        if self.type in {"integer", "decimal"} and (self.min is None or self.max is None):
            raise ValueError(f"a {self.type} item needs 'min' and 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        if self.type == "scale_0_10" and (self.min, self.max) not in {(None, None), (0, 10)}:
            raise ValueError("a scale_0_10 item always runs from 0 to 10")
        if self.options is not None:
            _check_unique_codes(self.options)
        return self

    @property
    def value_range(self) -> tuple[float, float] | None:
        if self.type == "scale_0_10":
            return (0.0, 10.0)
        if self.min is not None and self.max is not None:
            return (self.min, self.max)
        return None


class Section(Spec):
    id: str = Field(pattern=IDENTIFIER)
    title: LocalizedText
    intro: LocalizedText | None = None
    items: tuple[Item, ...] = Field(min_length=1)


class MissingRule(Spec):
    """How a score treats unanswered items.

    ``all``: every item is needed. ``prorate``: at most ``max_missing`` items may be missing and
    the mean of the answered items stands in for them (a sum is scaled up to the full item count).
    ``available``: at most ``max_missing`` may be missing and the score uses the answered ones
    as they are (the De Jong Gierveld manual's rule for its total).
    """

    rule: Literal["all", "prorate", "available"] = "all"
    max_missing: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> MissingRule:
        if self.rule == "all" and self.max_missing != 0:
            raise ValueError("rule 'all' allows no missing items; remove 'max_missing'")
        return self


class ScoreBase(Spec):
    id: str = Field(pattern=IDENTIFIER)
    label: LocalizedText | None = None
    direction: Literal["lower_is_better", "higher_is_better"] | None = None
    minimal_important_change: float | None = Field(default=None, gt=0)


def _missing_as_none(mapping: dict[Code, float | None]) -> dict[Code, float | None]:
    """A recode to ``null`` (or NaN) means "counts as unanswered", e.g. "don't know"."""
    return {
        code: None if value is None or math.isnan(value) else value
        for code, value in mapping.items()
    }


class AggregateScore(ScoreBase):
    """A sum or mean over items, each optionally recoded first."""

    method: Literal["sum", "mean"]
    items: tuple[str, ...] = Field(min_length=1)
    recode: dict[str, dict[Code, float | None]] = Field(default_factory=dict)
    missing: MissingRule = MissingRule()
    range: tuple[float, float] | None = None

    @field_validator("recode", mode="after")
    @classmethod
    def _nan_is_missing(
        cls, value: dict[str, dict[Code, float | None]]
    ) -> dict[str, dict[Code, float | None]]:
        return {item: _missing_as_none(mapping) for item, mapping in value.items()}

    @model_validator(mode="after")
    def _recode_items(self) -> AggregateScore:
        stray = [key for key in self.recode if key not in self.items]
        if stray:
            raise ValueError(f"recode names items that are not in 'items': {stray}")
        if self.missing.max_missing >= len(self.items):
            raise ValueError("'max_missing' must be smaller than the number of items")
        return self


class ItemScore(ScoreBase):
    """One item's (optionally recoded) value used as a score, e.g. the IPSS quality-of-life item."""

    method: Literal["item"]
    item: str = Field(pattern=IDENTIFIER)
    recode: dict[Code, float | None] = Field(default_factory=dict)
    range: tuple[float, float] | None = None

    @field_validator("recode", mode="after")
    @classmethod
    def _nan_is_missing(cls, value: dict[Code, float | None]) -> dict[Code, float | None]:
        return _missing_as_none(value)


class Band(Spec):
    """One band of a score. Bands are half-open: a band runs from its ``min`` (included) up to
    the next band's ``min`` (not included); the last band includes its ``max``. Limits are
    written as usual (IPSS mild 0–7, moderate 8–19): a prorated 7.6 is mild."""

    label: str = Field(pattern=IDENTIFIER)
    min: float
    max: float
    text: LocalizedText | None = None


def limit_step(values: Iterable[float]) -> float:
    """The precision the limits are written at: 1 for whole numbers, 0.1 for one decimal …"""
    decimals = 0
    for value in values:
        text = f"{float(value):.6f}".rstrip("0")
        decimals = max(decimals, len(text.split(".")[1]) if "." in text else 0)
    return 10.0**-decimals


class BandScore(ScoreBase):
    """A labelled band of another score, e.g. IPSS mild / moderate / severe (half-open
    intervals: see :class:`Band`)."""

    method: Literal["band"]
    of: str = Field(pattern=IDENTIFIER)
    bands: tuple[Band, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> BandScore:
        ordered = self.ordered
        for band in ordered:
            if band.min > band.max:
                raise ValueError(f"band '{band.label}' has min greater than max")
        step = limit_step(v for band in ordered for v in (band.min, band.max))
        for lower, upper in itertools.pairwise(ordered):
            if upper.min <= lower.max:
                raise ValueError(f"bands '{lower.label}' and '{upper.label}' overlap")
            if upper.min - lower.max > step + 1e-9:
                raise ValueError(
                    f"bands '{lower.label}' (… {lower.max:g}) and '{upper.label}' "
                    f"({upper.min:g} …) leave a gap: the next band must start at most "
                    f"{step:g} above the previous band's max"
                )
        return self

    @property
    def ordered(self) -> tuple[Band, ...]:
        """The bands from the lowest to the highest."""
        return tuple(sorted(self.bands, key=lambda band: band.min))

    def intervals(self) -> tuple[tuple[Band, float, float], ...]:
        """Each band with the values it covers: ``[low, high)``, the last one ``[low, high]``
        (see :class:`Band`)."""
        ordered = self.ordered
        highs = [upper.min for upper in ordered[1:]] + [ordered[-1].max]
        return tuple((band, band.min, high) for band, high in zip(ordered, highs, strict=True))

    def band_of(self, value: float | None) -> Band | None:
        """The band ``value`` falls in (half-open intervals), or None."""
        if value is None or math.isnan(value):
            return None
        for band, low, high in self.intervals():
            last = band is self.ordered[-1]
            if low <= value and (value < high or (last and value <= high)):
                return band
        return None


class FlagScore(ScoreBase):
    """A yes/no indicator derived from a score or an item, e.g. ``lonely`` = total ≥ 6."""

    method: Literal["flag"]
    of: str = Field(pattern=IDENTIFIER)
    operator: Literal["=", "!=", ">", ">=", "<", "<="]
    value: float


class ValueSet(Spec):
    """Utility weights: index = 1 − constant (if any level > 1) − Σ decrements."""

    name: str
    citation: str
    doi: str | None = None
    constant: float = 0.0
    decrements: dict[str, dict[int, float]]

    @model_validator(mode="after")
    def _decrements(self) -> ValueSet:
        for dimension, levels in self.decrements.items():
            for level, decrement in levels.items():
                if level < 1:
                    raise ValueError(f"dimension '{dimension}': level {level} is below 1")
                if decrement < 0:
                    raise ValueError(
                        f"dimension '{dimension}', level {level}: decrements are subtracted "
                        "from 1, so write them as positive numbers"
                    )
        if self.constant < 0:
            raise ValueError("the constant is subtracted from 1, so write it as a positive number")
        return self


class ValueSetScore(ScoreBase):
    """A preference-weighted index (EQ-5D-5L) looked up from a chosen value set."""

    method: Literal["value_set"]
    dimensions: tuple[str, ...] = Field(min_length=1)
    value_sets: dict[str, ValueSet] = Field(min_length=1)
    default_value_set: str

    @model_validator(mode="after")
    def _sets_complete(self) -> ValueSetScore:
        if self.default_value_set not in self.value_sets:
            raise ValueError(f"default_value_set '{self.default_value_set}' is not defined")
        for key, value_set in self.value_sets.items():
            missing = [d for d in self.dimensions if d not in value_set.decrements]
            if missing:
                raise ValueError(f"value set '{key}' has no decrements for {missing}")
        return self


Score = Annotated[
    AggregateScore | ItemScore | BandScore | FlagScore | ValueSetScore,
    Field(discriminator="method"),
]


class InstrumentSpec(Spec):
    """One version of a questionnaire: items, texts in three languages and its scoring."""

    id: str = Field(pattern=IDENTIFIER)
    version: str = Field(min_length=1)
    kind: Literal["prom", "prem"]
    title: LocalizedText
    description: LocalizedText | None = None
    licence: str = Field(min_length=1)
    source: str = Field(min_length=1)
    languages: tuple[Literal["fi", "sv", "en"], ...] = LANGUAGES
    placeholder_texts: bool = False
    recall_period: LocalizedText | None = None
    answer_sets: dict[str, tuple[AnswerOption, ...]] = Field(default_factory=dict)
    sections: tuple[Section, ...] = Field(min_length=1)
    scores: tuple[Score, ...] = ()
    notes: tuple[str, ...] = ()
    """Editorial notes on the definition, e.g. what an import from FHIR had to fill in."""

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("answer_sets")
    @classmethod
    def _answer_set_codes(
        cls, value: dict[str, tuple[AnswerOption, ...]]
    ) -> dict[str, tuple[AnswerOption, ...]]:
        for options in value.values():
            _check_unique_codes(options)
        return value

    @model_validator(mode="after")
    def _references(self) -> InstrumentSpec:
        seen: list[str] = []
        for section in self.sections:
            for item in section.items:
                if item.id in seen:
                    raise ValueError(f"item id '{item.id}' appears twice")
                if item.answer_set is not None and item.answer_set not in self.answer_sets:
                    raise ValueError(f"item '{item.id}': unknown answer_set '{item.answer_set}'")
                for condition in item.enable_when:
                    if condition.item not in seen:
                        raise ValueError(
                            f"item '{item.id}': enable_when refers to '{condition.item}', "
                            "which is not an earlier item"
                        )
                seen.append(item.id)
        items = set(seen)
        score_ids: list[str] = []
        band_ids: set[str] = set()
        for score in self.scores:
            # an item score may carry its item's own id (e.g. 'safe_daily', EQ-5D 'vas')
            own_item = isinstance(score, ItemScore) and score.item == score.id
            if score.id in score_ids or (score.id in items and not own_item):
                raise ValueError(f"score id '{score.id}' clashes with another score or item")
            for ref in _score_inputs(score):
                if ref not in items:
                    raise ValueError(f"score '{score.id}' refers to unknown item '{ref}'")
                self._check_scorable(score.id, ref)
            if isinstance(score, BandScore | FlagScore):
                if score.of not in score_ids and score.of not in items:
                    raise ValueError(
                        f"score '{score.id}' refers to '{score.of}', not an earlier score"
                    )
                if score.of in band_ids:
                    raise ValueError(
                        f"score '{score.id}' refers to the band '{score.of}'; bands and flags "
                        "need a numeric score or item"
                    )
                if score.of not in score_ids:
                    self._check_scorable(score.id, score.of)
            if isinstance(score, BandScore):
                band_ids.add(score.id)
                self._check_band_coverage(score)
            score_ids.append(score.id)
        return self

    def _check_band_coverage(self, score: BandScore) -> None:
        """The bands cover the whole range of the score they band, when that range is known
        (the score's ``range``, or the answer codes of an item)."""
        low_high: tuple[float, float] | None = None
        source = next((s for s in self.scores if s.id == score.of), None)
        if isinstance(source, AggregateScore | ItemScore):
            low_high = source.range
        elif source is None and score.of in self.item_ids:
            item = self.item(score.of)
            codes = [float(o.code) for o in self.options_for(item) if _is_number(o.code)]
            low_high = (min(codes), max(codes)) if codes else item.value_range
        if low_high is None:
            return
        ordered = score.ordered
        if ordered[0].min > low_high[0] or ordered[-1].max < low_high[1]:
            raise ValueError(
                f"score '{score.id}': the bands cover {ordered[0].min:g}–{ordered[-1].max:g} "
                f"but '{score.of}' ranges over {low_high[0]:g}–{low_high[1]:g}"
            )

    def _check_scorable(self, score_id: str, item_id: str) -> None:
        """A score can only read items whose answer is one number."""
        item = self.item(item_id)
        if item.type not in SCORABLE_TYPES:
            raise ValueError(
                f"score '{score_id}' uses item '{item_id}' of type {item.type}, which has no "
                "numeric value"
            )
        if item.type == "single_choice":
            for option in self.options_for(item):
                if not _is_number(option.code):
                    raise ValueError(
                        f"score '{score_id}' uses item '{item_id}', whose answer code "
                        f"'{option.code}' is not a number"
                    )

    # -- convenience -----------------------------------------------------------------------

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item in questionnaire order."""
        return tuple(item for section in self.sections for item in section.items)

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def options_for(self, item: Item) -> tuple[AnswerOption, ...]:
        """The answer options of a choice item, resolving a shared answer set."""
        if item.options is not None:
            return item.options
        if item.answer_set is not None:
            return self.answer_sets[item.answer_set]
        return ()

    def score(self, score_id: str) -> Score:
        for score in self.scores:
            if score.id == score_id:
                return score
        raise KeyError(score_id)

    @property
    def key(self) -> str:
        """``id@version``, the name under which this version is stored."""
        return f"{self.id}@{self.version}"


def _check_unique_codes(options: tuple[AnswerOption, ...]) -> None:
    codes = [str(option.code) for option in options]
    repeated = sorted({code for code in codes if codes.count(code) > 1})
    if repeated:
        raise ValueError(f"answer code(s) {', '.join(repeated)} appear more than once")


def _is_number(code: Code) -> bool:
    if isinstance(code, int):
        return True
    try:
        float(code)
    except ValueError:
        return False
    return True


def _score_inputs(score: Score) -> tuple[str, ...]:
    if isinstance(score, AggregateScore):
        return score.items
    if isinstance(score, ItemScore):
        return (score.item,)
    if isinstance(score, ValueSetScore):
        return score.dimensions
    return ()


# --------------------------------------------------------------------------------------------
# Pilots (cohorts/)
# --------------------------------------------------------------------------------------------


MAX_SETTING_LENGTH = 40
"""The longest procedure setting id (``procedures.setting``; an arm's id is as long)."""


class ArmSpec(Spec):
    """An arm of the pilot. ``settings``: where this arm's procedures may be done (ids of the
    pilot's ``procedure_settings``; empty: any of them)."""

    id: str = Field(pattern=IDENTIFIER)
    name: LocalizedText
    reference: bool = False
    settings: tuple[str, ...] = ()


class TimePointSpec(Spec):
    """A measurement occasion relative to the enrolment's index date, with its answer window."""

    id: str = Field(pattern=IDENTIFIER)
    label: LocalizedText
    offset_days: int
    window_open_days: int
    window_close_days: int
    instruments: tuple[str, ...] = Field(min_length=1)
    baseline: bool = False

    @model_validator(mode="after")
    def _window(self) -> TimePointSpec:
        if not self.window_open_days <= self.offset_days <= self.window_close_days:
            raise ValueError("the window must contain offset_days (open ≤ offset ≤ close)")
        return self


class ReminderPolicy(Spec):
    after_days: tuple[int, ...] = (7, 14)

    @field_validator("after_days")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in value) or list(value) != sorted(set(value)):
            raise ValueError("reminder days must be positive and increasing")
        return value


class ResponderRule(Spec):
    """Clinically important improvement: ≥ ``min_improvement`` points (or ≥ ``min_relative``).

    ``by_baseline_band`` may override the point threshold for a baseline band, e.g. IPSS
    moderate 3.2, severe 7.1 (Blanker et al. 2019).
    """

    instrument: str = Field(pattern=IDENTIFIER)
    score: str = Field(pattern=IDENTIFIER)
    min_improvement: float = Field(gt=0)
    min_relative: float | None = Field(default=None, gt=0, le=1)
    by_baseline_band: dict[str, float] = Field(default_factory=dict)


class CareCycle(Spec):
    """The window of the episode cost relative to the index date, e.g. −90 … +365 days."""

    start_days: int
    end_days: int

    @model_validator(mode="after")
    def _order(self) -> CareCycle:
        if self.start_days >= self.end_days:
            raise ValueError("start_days must be before end_days")
        return self


class CodedLabel(Spec):
    id: str = Field(pattern=IDENTIFIER)
    name: LocalizedText


EffectKind = Literal["improvement", "responder", "qaly"]
"""The effects of a two-arm cost-effectiveness analysis: the improvement of the primary score
(points), being a responder (clinically important improvement), QALYs."""
EFFECT_KINDS: tuple[EffectKind, ...] = ("improvement", "responder", "qaly")
CLUSTER_KINDS = ("none", "unit", "surgeon", "clinician")
"""Who the persons' outcomes may be correlated within: the enrolment's unit, the procedure's
surgeon or the enrolment's clinician (cluster-robust errors)."""


class WillingnessToPay(Spec):
    """What one more unit of an effect is worth to the decision maker: the grid of the
    cost-effectiveness acceptability curve (0 … ``maximum`` in ``points`` steps), the values the
    tables show, the ``reference`` value of the headline, and where the values come from."""

    effect: EffectKind
    maximum: float = Field(gt=0)
    points: int = Field(default=201, ge=11, le=2001)
    shown: tuple[float, ...] = Field(min_length=1)
    reference: float = Field(ge=0)
    source: LocalizedText
    unit: LocalizedText | None = None
    """One unit of the effect as the pages and PDFs name it (e.g. a point of the pilot's own
    score); not declared: a point of improvement, a responder, a QALY."""

    @model_validator(mode="after")
    def _inside_grid(self) -> WillingnessToPay:
        values = (*self.shown, self.reference)
        if any(v < 0 or v > self.maximum for v in values):
            raise ValueError("shown and reference values must lie within 0 … maximum")
        if list(self.shown) != sorted(set(self.shown)):
            raise ValueError("shown values must be increasing")
        return self

    @property
    def grid(self) -> tuple[float, ...]:
        """The CEAC grid: 0 … maximum in ``points`` equal steps, plus the shown values."""
        step = self.maximum / (self.points - 1)
        values = {round(i * step, 9) for i in range(self.points)}
        values.update(float(v) for v in (*self.shown, self.reference))
        return tuple(sorted(values))


DEFAULT_WTP: tuple[WillingnessToPay, ...] = (
    WillingnessToPay(
        effect="improvement",
        maximum=2_000.0,
        shown=(0.0, 250.0, 500.0, 1_000.0, 2_000.0),
        reference=500.0,
        source=LocalizedText(
            fi="Havainnollistava arvo: pisteelle ei ole vakiintunutta maksuhalukkuutta.",
            sv="Illustrativt värde: det finns ingen etablerad betalningsvilja per poäng.",
            en="Illustrative value: there is no established willingness to pay per point.",
        ),
    ),
    WillingnessToPay(
        effect="responder",
        maximum=20_000.0,
        shown=(0.0, 2_500.0, 5_000.0, 10_000.0, 20_000.0),
        reference=10_000.0,
        source=LocalizedText(
            fi="Havainnollistava arvo: hoitovasteelle ei ole vakiintunutta maksuhalukkuutta.",
            sv="Illustrativt värde: det finns ingen etablerad betalningsvilja per svarare.",
            en="Illustrative value: there is no established willingness to pay per responder.",
        ),
    ),
    WillingnessToPay(
        effect="qaly",
        maximum=50_000.0,
        points=501,
        shown=(0.0, 10_000.0, 20_000.0, 30_000.0, 50_000.0),
        reference=20_000.0,
        source=LocalizedText(
            fi="Suomessa ei ole virallista kynnysarvoa; 0–50 000 € on BCEA:n oletusväli.",
            sv="Finland har inget officiellt tröskelvärde; 0–50 000 € är BCEA:s standardintervall.",
            en="Finland has no official threshold; 0–50,000 € is BCEA's default range.",
        ),
    ),
)


class ComparisonSpec(Spec):
    """The two arms of a cost-effectiveness comparison: ``other`` minus ``reference``."""

    reference: str = Field(pattern=IDENTIFIER)
    other: str = Field(pattern=IDENTIFIER)


class PrimaryQuestion(Spec):
    """The declared primary analysis: one outcome score (``instrument.score``) at one follow-up
    time point, compared between two arms (``comparison``) or between persons who received a
    service and those who did not (``by: service_type``). Unset parts take the defaults of
    :meth:`PilotSpec.primary_plan`."""

    outcome: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
    time_point: str | None = Field(default=None, pattern=IDENTIFIER)
    comparison: ComparisonSpec | None = None
    by: Literal["service_type"] | None = None


class MissingDataSpec(Spec):
    """How missing outcomes and costs are handled in the primary analysis: multiple imputation
    by chained equations, separately per arm (``imputations`` data sets), with delta-adjusted
    missing-not-at-random scenarios (non-responders ``mnar_deltas`` points worse on the primary
    score) and complete cases as sensitivity analyses; or complete cases only.

    ``aipw_response`` (pilots with service types): missing follow-up scores are handled inside
    the doubly robust estimator by a response model (missing at random given the confounders
    and the exposures), missing confounders by multiple imputation; see
    :mod:`vaikuttavuus.domain.attribution` and ``docs/reports.md`` for why."""

    method: Literal["multiple_imputation", "aipw_response", "complete_cases"] = (
        "multiple_imputation"
    )
    imputations: int = Field(default=20, ge=2, le=200)
    mnar_deltas: tuple[float, ...] = (3.0,)

    @field_validator("mnar_deltas")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(d <= 0 for d in value):
            raise ValueError("mnar_deltas are positive amounts (points worse)")
        return value


class CostCompleteness(Spec):
    """When a person's costs count as complete for the care cycle (only then do they enter the
    cost analysis; "no cost data received" is missing, never 0 €): ``any_row`` — at least one
    cost row dated inside the care cycle; ``any_of_products`` — at least one row of one of
    ``products`` (e.g. the index procedure's product) inside the care cycle."""

    rule: Literal["any_row", "any_of_products"] = "any_row"
    products: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _products_named(self) -> CostCompleteness:
        if self.rule == "any_of_products" and not self.products:
            raise ValueError("rule 'any_of_products' needs the list 'products'")
        if self.rule == "any_row" and self.products:
            raise ValueError("'products' is only used with rule 'any_of_products'")
        return self


DEFAULT_PERSPECTIVE = LocalizedText(
    fi="Palvelujen järjestäjä ja maksaja (hyvinvointialue): sosiaali- ja terveydenhuollon "
    "kustannukset ilman asiakasmaksuja",
    sv="Tjänsternas anordnare och betalare (välfärdsområdet): social- och hälsovårdens "
    "kostnader utan klientavgifter",
    en="The organiser and payer of the services (the wellbeing services county): health and "
    "social care costs, client fees excluded",
)


class AnalysisSpec(Spec):
    """The pilot's declared analysis: the decision question, the primary analysis, and the
    settings of its methods text (CHEERS 2022). Validated against the instruments, arms, time
    points and costing catalogue by ``vaikuttavuus init``."""

    question: LocalizedText | None = None
    primary: PrimaryQuestion = PrimaryQuestion()
    perspective: LocalizedText = DEFAULT_PERSPECTIVE
    horizon_days: int | None = Field(default=None, gt=0)
    discount_rate: float = Field(default=0.03, ge=0, le=0.2)
    value_set: str | None = None
    cluster: Literal["none", "unit", "surgeon", "clinician"] = "none"
    missing_data: MissingDataSpec = MissingDataSpec()
    costs: CostCompleteness = CostCompleteness()
    willingness_to_pay: tuple[WillingnessToPay, ...] = ()
    yearly_volume: int | None = Field(default=None, gt=0)
    decision_horizon_years: int = Field(default=5, ge=1, le=50)
    subgroups: Literal["baseline_band", "none"] = "baseline_band"
    min_exposure_days: int = Field(default=30, ge=0, le=365)
    secondary_outcomes: tuple[str, ...] = ()
    multiplicity: Literal["holm", "bh"] = "holm"
    guidance_flag: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
    )
    """A score (``instrument.score``) whose flag at the baseline is a dimension of the
    client-guidance profile (older adults: feeling safe in daily life, flagged as feeling
    insecure); not declared: no such dimension."""
    utility: str | None = Field(
        default=None, pattern=r"^([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*|none)$"
    )
    """The utility score of the QALYs (``instrument.score``, e.g. ``eq5d5l.index``); not
    declared: the first instrument scheduled at the baseline with a value-set score; ``none``:
    no QALYs."""
    setting: LocalizedText | None = None
    """Where the pilot runs (CHEERS 2022 item 6)."""
    engagement: LocalizedText | None = None
    """How patients and others affected took part in the design (items 21 and 25)."""
    funding: LocalizedText | None = None
    """Who funds the pilot and its evaluation (item 27)."""
    conflicts_of_interest: LocalizedText | None = None
    """Item 28."""

    @model_validator(mode="after")
    def _unique_effects(self) -> AnalysisSpec:
        effects = [w.effect for w in self.willingness_to_pay]
        if len(set(effects)) != len(effects):
            raise ValueError("willingness_to_pay lists an effect twice")
        return self


class PrimaryPlan(Spec):
    """The primary analysis with every default filled in (see :meth:`PilotSpec.primary_plan`)."""

    instrument: str
    score: str
    time_point: str
    comparison: ComparisonSpec | None
    by: Literal["service_type"] | None

    @property
    def outcome(self) -> str:
        return f"{self.instrument}.{self.score}"


PHONE_NUMBER = r"^\+?[0-9][0-9 ()-]{4,24}[0-9]$"


class UnitContact(Spec):
    """How a patient or client reaches a person: a name, a phone number and its hours.

    ``unit`` is the enrolment's unit as imported (e.g. ``PHKS urologia``); the pilot's default
    contact has none. Shown on the patient pages (introduction, opt-out, thank-you) and in the
    printed letters and messages.
    """

    unit: str | None = Field(default=None, min_length=1, max_length=80)
    name: LocalizedText
    phone: str = Field(pattern=PHONE_NUMBER)
    hours: LocalizedText

    @property
    def phone_uri(self) -> str:
        """The number as a ``tel:`` link target (digits and a leading +)."""
        return "tel:" + re.sub(r"[^0-9+]", "", self.phone)


class PatientContacts(Spec):
    """A pilot's contact details: a default and, optionally, one per unit."""

    default: UnitContact
    units: tuple[UnitContact, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> PatientContacts:
        if self.default.unit is not None:
            raise ValueError("the default contact has no 'unit'")
        names = [contact.unit for contact in self.units]
        if any(name is None for name in names):
            raise ValueError("every contact under 'units' names its 'unit'")
        if len(set(names)) != len(names):
            raise ValueError("each unit has one contact")
        return self

    def for_unit(self, unit: str | None) -> UnitContact:
        """The unit's contact, else the pilot's default."""
        return next((c for c in self.units if unit is not None and c.unit == unit), self.default)


class PilotSpec(Spec):
    """A value-based-care pilot: arms, schedule, outcomes, cost window and analysis settings."""

    id: str = Field(pattern=SLUG)
    version: str = Field(min_length=1)
    name: LocalizedText
    description: LocalizedText | None = None
    index_event: Literal["procedure", "enrolment"]
    arms: tuple[ArmSpec, ...] = Field(min_length=1)
    time_points: tuple[TimePointSpec, ...] = Field(min_length=1)
    reminders: ReminderPolicy = ReminderPolicy()
    care_cycle: CareCycle
    primary_outcome: ResponderRule
    secondary_outcomes: tuple[ResponderRule, ...] = ()
    covariates: tuple[str, ...] = ()
    service_types: tuple[CodedLabel, ...] = ()
    provider_sectors: tuple[CodedLabel, ...] = ()
    procedure_types: tuple[CodedLabel, ...] = ()
    procedure_settings: tuple[CodedLabel, ...] = ()
    """Where procedures are done (e.g. operating room, day surgery), with their names; an arm
    may restrict its procedures to some of them (``arms → settings``). Not declared: the arms
    themselves are the settings."""
    min_cell_size: int = Field(default=5, ge=1)
    currency_year: int = Field(ge=2000, le=2100)
    start_date: date | None = None
    analysis: AnalysisSpec = AnalysisSpec()
    contacts: PatientContacts | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _consistent(self) -> PilotSpec:
        arm_ids = [arm.id for arm in self.arms]
        if len(set(arm_ids)) != len(arm_ids):
            raise ValueError("arm ids must be unique")
        if sum(arm.reference for arm in self.arms) > 1:
            raise ValueError("at most one arm can be the reference")
        tp_ids = [tp.id for tp in self.time_points]
        if len(set(tp_ids)) != len(tp_ids):
            raise ValueError("time point ids must be unique")
        if sum(tp.baseline for tp in self.time_points) != 1:
            raise ValueError("exactly one time point must be marked 'baseline: true'")
        offsets = [tp.offset_days for tp in self.time_points]
        if offsets != sorted(offsets):
            raise ValueError("time points must be listed in order of offset_days")
        self._check_settings()
        self._check_analysis(arm_ids, tp_ids)
        return self

    def _check_settings(self) -> None:
        declared = [setting.id for setting in self.procedure_settings]
        if len(set(declared)) != len(declared):
            raise ValueError("procedure_settings: setting ids must be unique")
        too_long = [s for s in declared if len(s) > MAX_SETTING_LENGTH]
        if too_long:
            raise ValueError(
                f"procedure_settings: at most {MAX_SETTING_LENGTH} characters: "
                f"{', '.join(too_long)}"
            )
        for arm in self.arms:
            if arm.settings and not declared:
                raise ValueError(
                    f"arms[{arm.id}] → settings: declare the settings under procedure_settings"
                )
            unknown = [s for s in arm.settings if s not in declared]
            if unknown:
                raise ValueError(
                    f"arms[{arm.id}] → settings: unknown setting(s) {', '.join(unknown)} "
                    f"(declared: {', '.join(declared)})"
                )

    @property
    def settings(self) -> tuple[CodedLabel, ...]:
        """Where procedures may be done: the declared ``procedure_settings``, else the arms."""
        if self.procedure_settings:
            return self.procedure_settings
        return tuple(CodedLabel(id=arm.id, name=arm.name) for arm in self.arms)

    def settings_of(self, arm_id: str) -> tuple[str, ...]:
        """The settings an arm's procedures may be done in (its own list, else all)."""
        arm = next((a for a in self.arms if a.id == arm_id), None)
        if arm is not None and arm.settings:
            return arm.settings
        return tuple(s.id for s in self.settings)

    def setting_name(self, setting_id: str, language: str) -> str:
        """A setting's name in ``language`` (the id itself when unknown)."""
        found = next((s for s in self.settings if s.id == setting_id), None)
        return found.name.get(language) if found is not None else setting_id

    def _check_analysis(self, arm_ids: list[str], tp_ids: list[str]) -> None:
        primary = self.analysis.primary
        if primary.time_point is not None:
            if primary.time_point not in tp_ids:
                raise ValueError(
                    f"analysis → primary → time_point: unknown time point '{primary.time_point}'"
                )
            if primary.time_point == self.baseline.id:
                raise ValueError("analysis → primary → time_point: must be a follow-up")
        if primary.comparison is not None:
            for arm in (primary.comparison.reference, primary.comparison.other):
                if arm not in arm_ids:
                    raise ValueError(f"analysis → primary → comparison: unknown arm '{arm}'")
            if primary.comparison.reference == primary.comparison.other:
                raise ValueError("analysis → primary → comparison: the two arms are the same")
        if primary.by == "service_type" and not self.service_types:
            raise ValueError("analysis → primary → by: the pilot has no service_types")
        if self.analysis.missing_data.method == "aipw_response" and not self.service_types:
            raise ValueError(
                "analysis → missing_data → method: 'aipw_response' is for pilots with service_types"
            )
        if self.analysis.cluster == "surgeon" and self.index_event != "procedure":
            raise ValueError("analysis → cluster: 'surgeon' needs index_event 'procedure'")

    def primary_plan(self) -> PrimaryPlan:
        """The declared primary analysis with defaults: the primary outcome's score, at the
        last follow-up, compared between the reference arm and the first other arm (two-arm
        pilots) or by service type (pilots with service types)."""
        primary = self.analysis.primary
        if primary.outcome is not None:
            instrument, score = primary.outcome.split(".", 1)
        else:
            instrument, score = self.primary_outcome.instrument, self.primary_outcome.score
        follow_ups = [tp.id for tp in self.time_points if not tp.baseline]
        time_point = primary.time_point or (follow_ups[-1] if follow_ups else self.baseline.id)
        by = primary.by or ("service_type" if self.service_types else None)
        comparison = primary.comparison
        if comparison is None and by is None:
            others = [arm.id for arm in self.arms if arm.id != self.reference_arm.id]
            if others:
                comparison = ComparisonSpec(reference=self.reference_arm.id, other=others[0])
        return PrimaryPlan(
            instrument=instrument,
            score=score,
            time_point=time_point,
            comparison=comparison,
            by=by if comparison is None or primary.by is not None else None,
        )

    def willingness_to_pay(self, effect: EffectKind) -> WillingnessToPay:
        """The declared willingness-to-pay values of ``effect`` (else the built-in defaults)."""
        for declared in self.analysis.willingness_to_pay:
            if declared.effect == effect:
                return declared
        return next(w for w in DEFAULT_WTP if w.effect == effect)

    @property
    def horizon_days(self) -> int:
        """The time horizon of the analysis: declared, else the care cycle's end."""
        return self.analysis.horizon_days or self.care_cycle.end_days

    @property
    def reference_arm(self) -> ArmSpec:
        return next((arm for arm in self.arms if arm.reference), self.arms[0])

    @property
    def baseline(self) -> TimePointSpec:
        return next(tp for tp in self.time_points if tp.baseline)

    def time_point(self, time_point_id: str) -> TimePointSpec:
        for tp in self.time_points:
            if tp.id == time_point_id:
                return tp
        raise KeyError(time_point_id)

    @property
    def instrument_ids(self) -> tuple[str, ...]:
        ordered: dict[str, None] = {}
        for tp in self.time_points:
            ordered.update(dict.fromkeys(tp.instruments))
        return tuple(ordered)


def utility_score(
    pilot: PilotSpec, instruments: Mapping[str, InstrumentSpec]
) -> tuple[str, str] | None:
    """The (instrument, score) of the pilot's QALYs: ``analysis → utility`` when declared,
    else the first instrument scheduled at the baseline that has a value-set score (EQ-5D-5L
    in the shipped pilots), else None."""
    declared = pilot.analysis.utility
    if declared == "none":
        return None
    if declared is not None:
        instrument, score_id = declared.split(".", 1)
        return instrument, score_id
    for code in pilot.baseline.instruments:
        spec = instruments.get(code)
        for score in spec.scores if spec is not None else ():
            if isinstance(score, ValueSetScore):
                return code, score.id
    return None


def is_identifier(value: str) -> bool:
    return re.match(IDENTIFIER, value) is not None


# --------------------------------------------------------------------------------------------
# Clinical measures (cohorts/measures.yaml)
# --------------------------------------------------------------------------------------------


class MeasureSpec(Spec):
    """A clinical measure with its unit and valid range, e.g. Qmax in mL/s from 0 to 60."""

    id: str = Field(pattern=IDENTIFIER)
    name: LocalizedText
    type: Literal["decimal", "integer", "yes_no", "grade"]
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    grades: tuple[str, ...] = ()
    direction: Literal["lower_is_better", "higher_is_better"] | None = None
    pilots: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> MeasureSpec:
        if self.type in {"decimal", "integer"} and (self.min is None or self.max is None):
            raise ValueError(f"a {self.type} measure needs 'min' and 'max'")
        if self.type == "grade" and not self.grades:
            raise ValueError("a grade measure needs its 'grades'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        return self


class MeasureCatalogue(Spec):
    measures: tuple[MeasureSpec, ...] = Field(min_length=1)

    def measure(self, measure_id: str) -> MeasureSpec:
        for measure in self.measures:
            if measure.id == measure_id:
                return measure
        raise KeyError(measure_id)
