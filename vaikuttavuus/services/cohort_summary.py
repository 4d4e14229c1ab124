"""The cohort summary of a pilot: enrolment, response rates and the primary outcome per arm."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from vaikuttavuus.domain.reference import reference_band
from vaikuttavuus.models import Pilot
from vaikuttavuus.queries import enrolment_overview, instrument_scores, invitation_counts
from vaikuttavuus.services.definitions import current_instrument, instrument_spec, pilot_spec

ANSWERABLE = ("open", "completed", "expired")


@dataclass
class CohortSummary:
    pilot_code: str
    pilot_name: str
    language: str
    generated_at: datetime
    period: tuple[date | None, date | None]
    arms: list[tuple[str, str]]
    time_points: list[tuple[str, str]]
    instrument_title: str
    score_label: str
    score_range: tuple[float, float] | None
    enrolled: dict[str, int]
    response_rates: pd.DataFrame
    outcome: pd.DataFrame
    change: pd.DataFrame
    minimal_important_change: float
    min_cell_size: int
    notes: list[str] = field(default_factory=list)

    def rate_cell(self, arm: str, time_point: str) -> dict[str, Any]:
        """Invited, completed and response rate of one arm at one time point."""
        return _cell(self.response_rates, arm, time_point)

    def outcome_cell(self, arm: str, time_point: str) -> dict[str, Any]:
        """n, mean, median and quartiles of the primary outcome in one cell."""
        return _cell(self.outcome, arm, time_point)

    def change_rows(self) -> list[dict[str, Any]]:
        """Change from baseline per arm and later time point, NaN given as None."""
        return [_plain(row) for row in self.change.to_dict("records")]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def _cell(table: pd.DataFrame, arm: str, time_point: str) -> dict[str, Any]:
    if table.empty:
        return {"n": 0, "invited": 0}
    match = table[(table["arm"] == arm) & (table["time_point"] == time_point)]
    if match.empty:
        return {"n": 0, "invited": 0}
    return _plain(match.iloc[0].to_dict())


def cohort_summary(
    session: Session,
    pilot: Pilot,
    language: str,
    period: tuple[date | None, date | None] = (None, None),
) -> CohortSummary:
    spec = pilot_spec(pilot)
    rule = spec.primary_outcome
    instrument = instrument_spec(current_instrument(session, rule.instrument))
    score = instrument.score(rule.score)

    enrolments = enrolment_overview(session, pilot.id)
    enrolments = _in_period(enrolments, period)
    ids = set(enrolments["enrolment_id"]) if not enrolments.empty else set()
    arms = [(arm.code, arm.label(language)) for arm in pilot.arms]
    time_points = [(tp.code, tp.label(language)) for tp in pilot.time_points]
    enrolled = {
        code: int((enrolments["arm"] == code).sum()) if not enrolments.empty else 0
        for code, _ in arms
    }

    scores = instrument_scores(session, pilot.id, rule.instrument)
    if not scores.empty:
        scores = scores[scores["enrolment_id"].isin(ids)]
    outcome = _outcome_table(scores, rule.score, arms, time_points)
    change = _change_table(
        scores,
        rule.score,
        baseline=spec.baseline.id,
        time_points=time_points,
        arms=arms,
        minimal_change=rule.min_improvement,
        direction=score.direction or "lower_is_better",
    )
    return CohortSummary(
        pilot_code=pilot.code,
        pilot_name=pilot.label(language),
        language=language,
        generated_at=datetime.now(UTC),
        period=period,
        arms=arms,
        time_points=time_points,
        instrument_title=instrument.title.get(language),
        score_label=score.label.get(language) if score.label else score.id,
        score_range=getattr(score, "range", None),
        enrolled=enrolled,
        response_rates=_response_rates(session, pilot, period, arms, time_points),
        outcome=outcome,
        change=change,
        minimal_important_change=rule.min_improvement,
        min_cell_size=spec.min_cell_size,
    )


def _in_period(enrolments: pd.DataFrame, period: tuple[date | None, date | None]) -> pd.DataFrame:
    start, end = period
    if enrolments.empty:
        return enrolments
    mask = pd.Series(True, index=enrolments.index)
    if start is not None:
        mask &= enrolments["index_date"] >= start
    if end is not None:
        mask &= enrolments["index_date"] <= end
    return enrolments[mask]


def _outcome_table(
    scores: pd.DataFrame,
    score: str,
    arms: list[tuple[str, str]],
    time_points: list[tuple[str, str]],
) -> pd.DataFrame:
    band = reference_band(scores, score, by=("arm", "time_point"))
    if scores.empty or score not in scores:
        means = pd.DataFrame(columns=["arm", "time_point", "mean"])
    else:
        means = (
            scores.dropna(subset=[score])
            .groupby(["arm", "time_point"])[score]
            .mean()
            .rename("mean")
            .reset_index()
        )
    grid = pd.MultiIndex.from_product(
        [[a for a, _ in arms], [t for t, _ in time_points]], names=["arm", "time_point"]
    ).to_frame(index=False)
    table = grid.merge(band, on=["arm", "time_point"], how="left")
    table = table.merge(means, on=["arm", "time_point"], how="left")
    table["n"] = table["n"].fillna(0).astype(int)
    return table


def _change_table(
    scores: pd.DataFrame,
    score: str,
    *,
    baseline: str,
    time_points: list[tuple[str, str]],
    arms: list[tuple[str, str]],
    minimal_change: float,
    direction: str,
) -> pd.DataFrame:
    """Change from baseline to each later time point, per arm, with the share of responders."""
    rows = []
    wide = (
        scores.pivot_table(index=["person_id", "arm"], columns="time_point", values=score)
        if not scores.empty
        else pd.DataFrame()
    )
    for tp, _label in time_points:
        if tp == baseline:
            continue
        for arm, _arm_label in arms:
            if wide.empty or baseline not in wide or tp not in wide:
                rows.append({"arm": arm, "time_point": tp, "n": 0})
                continue
            part = wide.xs(arm, level="arm") if arm in wide.index.get_level_values("arm") else None
            if part is None:
                rows.append({"arm": arm, "time_point": tp, "n": 0})
                continue
            pairs = part[[baseline, tp]].dropna()
            change = pairs[tp] - pairs[baseline]
            improvement = -change if direction == "lower_is_better" else change
            rows.append(
                {
                    "arm": arm,
                    "time_point": tp,
                    "n": len(pairs),
                    "mean_change": change.mean() if len(pairs) else None,
                    "responders": int((improvement >= minimal_change).sum()),
                    "responder_share": (improvement >= minimal_change).mean()
                    if len(pairs)
                    else None,
                }
            )
    return pd.DataFrame(rows)


def _response_rates(
    session: Session,
    pilot: Pilot,
    period: tuple[date | None, date | None],
    arms: list[tuple[str, str]],
    time_points: list[tuple[str, str]],
) -> pd.DataFrame:
    counts = invitation_counts(session, pilot.id, period)
    rows = []
    for tp, _ in time_points:
        for arm, _ in arms:
            part = (
                counts[(counts["arm"] == arm) & (counts["time_point"] == tp)]
                if not counts.empty
                else counts
            )
            due = int(part[part["status"].isin(ANSWERABLE)]["n"].sum()) if not part.empty else 0
            done = int(part[part["status"] == "completed"]["n"].sum()) if not part.empty else 0
            rows.append(
                {
                    "arm": arm,
                    "time_point": tp,
                    "invited": due,
                    "completed": done,
                    "rate": done / due if due else None,
                }
            )
    return pd.DataFrame(rows)
