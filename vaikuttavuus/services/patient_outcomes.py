"""One patient's outcomes against the cohort (same pilot and arm), for the clinician's view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.orm import Session

from vaikuttavuus.domain.reference import reference_band
from vaikuttavuus.domain.specs import AggregateScore, BandScore, InstrumentSpec, ItemScore
from vaikuttavuus.models import Enrolment, Pilot
from vaikuttavuus.queries import instrument_scores
from vaikuttavuus.services.definitions import current_instrument, instrument_spec, pilot_spec


@dataclass(frozen=True)
class ScoreRow:
    time_point: str
    label: str
    patient: float | None
    band: str | None
    n: int
    median: float | None
    q1: float | None
    q3: float | None


@dataclass
class ScoreSeries:
    instrument_code: str
    instrument_title: str
    score_id: str
    score_label: str
    value_range: tuple[float, float] | None
    direction: str | None
    minimal_important_change: float | None
    rows: list[ScoreRow] = field(default_factory=list)
    bands: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def baseline(self) -> float | None:
        return self.rows[0].patient if self.rows else None

    @property
    def important_change_line(self) -> float | None:
        """The value the patient must reach for a clinically important improvement."""
        if self.baseline is None or self.minimal_important_change is None:
            return None
        if self.direction == "lower_is_better":
            return self.baseline - self.minimal_important_change
        if self.direction == "higher_is_better":
            return self.baseline + self.minimal_important_change
        return None

    @property
    def has_patient_values(self) -> bool:
        return any(row.patient is not None for row in self.rows)


def _none(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def main_scores(spec: InstrumentSpec) -> list[AggregateScore | ItemScore]:
    """The scores worth charting: sums, means and item scores with a declared range."""
    return [
        score
        for score in spec.scores
        if isinstance(score, AggregateScore | ItemScore) and score.range is not None
    ]


def patient_series(
    session: Session, enrolment: Enrolment, language: str, instrument_code: str
) -> list[ScoreSeries]:
    """Every chartable score of one instrument: the patient's values and the cohort band."""
    pilot: Pilot = enrolment.pilot
    spec = instrument_spec(current_instrument(session, instrument_code))
    cohort = instrument_scores(session, pilot.id, instrument_code)
    same_arm = cohort[cohort["arm"] == enrolment.arm.code] if not cohort.empty else cohort
    mine = cohort[cohort["enrolment_id"] == enrolment.id] if not cohort.empty else cohort
    time_points = [
        (tp.code, tp.label(language))
        for tp in pilot.time_points
        if instrument_code in {link.instrument_code for link in tp.instruments}
    ]
    band_score = next((s for s in spec.scores if isinstance(s, BandScore)), None)
    series = []
    for score in main_scores(spec):
        reference = reference_band(same_arm, score.id)
        by_tp = reference.set_index("time_point") if not reference.empty else pd.DataFrame()
        rows = []
        for code, label in time_points:
            own = mine[mine["time_point"] == code] if not mine.empty else mine
            value = _none(own[score.id].iloc[0]) if not own.empty else None
            band = None
            if band_score is not None and band_score.of == score.id and not own.empty:
                raw = own[band_score.id].iloc[0]
                band = None if pd.isna(raw) else str(raw)
            ref = by_tp.loc[code] if code in by_tp.index else None
            rows.append(
                ScoreRow(
                    time_point=code,
                    label=label,
                    patient=value,
                    band=band,
                    n=int(ref["n"]) if ref is not None else 0,
                    median=_none(ref["median"]) if ref is not None else None,
                    q1=_none(ref["q1"]) if ref is not None else None,
                    q3=_none(ref["q3"]) if ref is not None else None,
                )
            )
        bands = []
        if band_score is not None and band_score.of == score.id:
            bands = [
                (b.min, b.max, b.text.get(language) if b.text else b.label)
                for b in band_score.bands
            ]
        series.append(
            ScoreSeries(
                instrument_code=instrument_code,
                instrument_title=spec.title.get(language),
                score_id=score.id,
                score_label=score.label.get(language) if score.label else score.id,
                value_range=score.range,
                direction=score.direction,
                minimal_important_change=_minimal_change(enrolment, spec, score.id),
                rows=rows,
                bands=bands,
            )
        )
    return series


def _minimal_change(enrolment: Enrolment, spec: InstrumentSpec, score_id: str) -> float | None:
    """The pilot's responder threshold when it names this score, else the instrument's."""
    pilot = pilot_spec(enrolment.pilot)
    for rule in (pilot.primary_outcome, *pilot.secondary_outcomes):
        if rule.instrument == spec.id and rule.score == score_id:
            return rule.min_improvement
    score = spec.score(score_id)
    return score.minimal_important_change
