"""Funnel plots of the responder share by unit and by professional, against each arm's share.

The arms differ by design (different procedures, different patients): against one pooled
share the arm difference would show as outlying units. So each group is compared with what
its own patients' arms lead one to expect (indirect standardisation): a unit of one arm with
that arm's share, a professional working in both arms with the mix of the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus.domain.stats import plain
from vaikuttavuus.services.analytics.data import (
    CohortData,
)
from vaikuttavuus.services.analytics.publication import ALL, Published

FUNNEL_Z = (1.959963984540054, 3.090232306167813)
"""Funnel-plot limits: 95 % and 99.8 % (z = 1.96 and 3.09)."""


@dataclass(frozen=True)
class Funnel:
    """Responder share of the primary outcome by unit and by professional, with the funnel
    limits e ± z·√(e(1 − e)/n) for z = 1.96 and 3.09 around each group's expected share e: the
    mean of its persons' arm shares (``p0_by_arm``; ``expected`` in the tables, ``arm`` the
    group's arm or "all" for a group of both). ``p0`` is the whole cohort's share."""

    score: str
    follow_up: str | None
    p0: float | None
    n_total: int
    groups: dict[str, Published]
    p0_by_arm: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "follow_up": self.follow_up,
            "p0": plain(self.p0),
            "p0_by_arm": {arm: plain(p0) for arm, p0 in self.p0_by_arm.items()},
            "n_total": self.n_total,
            "groups": {name: table.to_dict() for name, table in self.groups.items()},
        }


class FunnelSection(CohortData):
    """Funnel plots of the responder share by unit and by professional, against each arm's share.

The arms differ by design (different procedures, different patients): against one pooled
share the arm difference would show as outlying units. So each group is compared with what
its own patients' arms lead one to expect (indirect standardisation): a unit of one arm with
that arm's share, a professional working in both arms with the mix of the two.
"""

    @cached_property
    def funnel(self) -> Funnel:
        rule = self.spec.primary_outcome
        columns = [
            "group",
            "arm",
            "n",
            "responders",
            "share",
            "expected",
            "low_95",
            "high_95",
            "low_998",
            "high_998",
            "position",
        ]
        empty = Funnel(self.primary_score, self.follow_up, None, 0, {})
        if self.follow_up is None or rule.instrument not in self.scheduled_instruments:
            return empty
        table = self.responders(rule, [self.follow_up]).dropna(subset=["responder"])
        if table.empty:
            return empty
        table = table.assign(responder=table["responder"].astype(bool))
        p0 = float(table["responder"].mean())
        by_arm = table.groupby("arm", sort=False)["responder"].mean()
        p0_by_arm = {str(arm): float(by_arm[arm]) for arm in self.arms if arm in by_arm.index}
        table = table.assign(expected=table["arm"].map(p0_by_arm).astype(float))
        roster = self.roster.set_index("enrolment_id")
        professional = roster["clinician_code"]
        if not self.procedures.empty:
            surgeon = self.procedures.set_index("enrolment_id")["surgeon_code"]
            professional = surgeon.reindex(roster.index).fillna(professional)
        groupings = {"unit": roster["unit"], "professional": professional}
        published = {}
        for name, labels in groupings.items():
            label = labels.reindex(table["person_id"]).to_numpy()
            part = table.assign(group=label).dropna(subset=["group"])
            if part.empty or part["group"].nunique() < 2:
                continue
            grouped = (
                part.groupby("group", sort=True)
                .agg(
                    n=("responder", "size"),
                    responders=("responder", "sum"),
                    expected=("expected", "mean"),
                    arms=("arm", "nunique"),
                    arm=("arm", lambda arms: arms.mode().iloc[0]),
                )
                .reset_index()
            )
            grouped["arm"] = grouped["arm"].where(grouped["arms"] == 1, ALL)
            grouped["share"] = grouped["responders"] / grouped["n"]
            spread = np.sqrt(grouped["expected"] * (1 - grouped["expected"]) / grouped["n"])
            for z, suffix in zip(FUNNEL_Z, ("95", "998"), strict=True):
                grouped[f"low_{suffix}"] = np.clip(grouped["expected"] - z * spread, 0.0, 1.0)
                grouped[f"high_{suffix}"] = np.clip(grouped["expected"] + z * spread, 0.0, 1.0)
            grouped["position"] = np.select(
                [
                    grouped["share"] > grouped["high_998"],
                    grouped["share"] > grouped["high_95"],
                    grouped["share"] < grouped["low_998"],
                    grouped["share"] < grouped["low_95"],
                ],
                ["above_998", "above_95", "below_998", "below_95"],
                default="within",
            )
            published[name] = self._publish(
                f"funnel_{name}",
                grouped[columns],
                counts=["n", "responders"],
                derived={
                    "n": ["responders", "share", *columns[5:]],
                    "responders": ["share", "position"],
                },
                groups=["group"],
                suppress_zeros=["responders"],
            )
        return Funnel(self.primary_score, self.follow_up, p0, len(table), published, p0_by_arm)

    def funnel_curve(self, n_max: int, points: int = 60, arm: str | None = None) -> pd.DataFrame:
        """The funnel limits over n = 1 … ``n_max`` for the chart and its table, around
        ``arm``'s share (the whole cohort's without an arm)."""
        funnel = self.funnel
        p0 = funnel.p0 if arm is None else funnel.p0_by_arm.get(arm)
        n = np.unique(np.geomspace(1, max(n_max, 2), points).round().astype(int))
        frame = pd.DataFrame({"n": n})
        if p0 is None:
            return frame
        spread = np.sqrt(p0 * (1 - p0) / n)
        for z, suffix in zip(FUNNEL_Z, ("95", "998"), strict=True):
            frame[f"low_{suffix}"] = np.clip(p0 - z * spread, 0.0, 1.0)
            frame[f"high_{suffix}"] = np.clip(p0 + z * spread, 0.0, 1.0)
        return frame
