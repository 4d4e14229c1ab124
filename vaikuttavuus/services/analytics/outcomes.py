"""Outcome summaries per arm, score and follow-up, and QALYs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from vaikuttavuus.domain import outcomes
from vaikuttavuus.domain.notes import Note
from vaikuttavuus.domain.outcomes import QalyDifference
from vaikuttavuus.domain.stats import mean_ci
from vaikuttavuus.services.analytics.data import (
    CohortData,
    _score_name,
)
from vaikuttavuus.services.analytics.publication import ALL, Published


@dataclass(frozen=True)
class OutcomeSection:
    """Outcome summaries per arm, score and follow-up (:func:`outcomes.summarise_outcomes`),
    QALYs per arm and the baseline-adjusted QALY difference."""

    summary: Published
    scores: tuple[str, ...]
    primary: str
    qalys: Published
    qaly_difference: QalyDifference | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_dict(),
            "scores": list(self.scores),
            "primary": self.primary,
            "qalys": self.qalys.to_dict(),
            "qaly_difference": None
            if self.qaly_difference is None
            else self.qaly_difference.to_dict(),
            "notes": list(self.notes),
        }


class OutcomeSections(CohortData):
    """Outcome summaries per arm, score and follow-up, and QALYs."""

    @cached_property
    def outcomes(self) -> OutcomeSection:
        follow_up = self.follow_up  # the filter's time point when it is a follow-up
        follow_ups = (
            [follow_up]
            if follow_up is not None and self.filters.time_point in self.follow_ups
            else None
        )
        parts = []
        scores = []
        notes: list[str] = []
        for rule in self.rules:
            score = _score_name(rule.instrument, rule.score)
            if rule.instrument not in self.scheduled_instruments:
                continue
            table = self.responders(rule, follow_ups)
            scores.append(score)
            if not table.empty:
                parts.append(outcomes.summarise_outcomes(table).table)
        utility = self.utility
        if utility is not None:
            table = self.changes(utility, follow_ups)
            scores.append(utility)
            if not table.empty:
                parts.append(outcomes.summarise_outcomes(table).table)
        summary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        published = self._publish(
            "outcomes",
            summary,
            counts=list(outcomes.SUMMARY_DERIVED),
            derived=outcomes.SUMMARY_DERIVED,
            groups=["arm"],
            strata=["score", "time_point"],
            total_label=ALL,
            suppress_zeros=["n_responders"],
        )
        published = self._in_reading_order(published, scores)
        qalys, difference = self._qalys(notes)
        return OutcomeSection(
            summary=published,
            scores=tuple(scores),
            primary=self.primary_score,
            qalys=qalys,
            qaly_difference=difference,
            notes=tuple(notes),
        )

    def _in_reading_order(self, published: Published, scores: list[str]) -> Published:
        """Rows by score, then time point, then arm in the pilot's order with the whole
        cohort last: every follow-up lists the arms in the same order."""
        table = published.table
        if table.empty:
            return published
        score_rank = {score: rank for rank, score in enumerate(scores)}
        time_rank = {tp: rank for rank, tp in enumerate(self.time_points)}
        arm_rank = {arm: rank for rank, arm in enumerate(self.arms)}
        keys = [
            (
                score_rank.get(score, len(score_rank)),
                time_rank.get(time_point, len(time_rank)),
                len(arm_rank) + 1 if arm == ALL else arm_rank.get(arm, len(arm_rank)),
            )
            for score, time_point, arm in zip(
                table["score"], table["time_point"], table["arm"], strict=True
            )
        ]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        return published if order == list(range(len(keys))) else published.reordered(order)

    def _qalys(self, notes: list[str]) -> tuple[Published, QalyDifference | None]:
        table = self.qaly_table
        columns = ["arm", "n_persons", "n", "mean", "ci_low", "ci_high"]
        if table is None:
            return self._publish("qalys", pd.DataFrame(columns=columns), counts=["n"]), None
        rows = []
        for arm in [*self.arms, ALL]:
            part = table if arm == ALL else table[table["arm"] == arm]
            stats = mean_ci(part["qaly"])
            rows.append(
                {
                    "arm": arm,
                    "n_persons": len(part),
                    "n": stats.n,
                    "mean": stats.mean,
                    "ci_low": stats.ci_low,
                    "ci_high": stats.ci_high,
                }
            )
        published = self._publish(
            "qalys",
            pd.DataFrame(rows, columns=columns),
            counts=["n_persons", "n"],
            derived={"n": ["mean", "ci_low", "ci_high"]},
            groups=["arm"],
            total_label=ALL,
            suppress_zeros=False,
        )
        difference = None
        shown = published.table.set_index("arm")["n"]
        if self.filters.arm is None and all(pd.notna(shown.get(arm)) for arm in self.arms):
            try:
                difference = outcomes.adjusted_qaly_difference(table, reference=self.reference_arm)
            except outcomes.OutcomeError as error:
                notes.append(Note("qaly_difference_failed", str(error), detail=str(error)))
        return published, difference
