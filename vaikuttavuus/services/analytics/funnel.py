"""Funnel plots of the responder share by unit and by professional."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus.domain.stats import plain
from vaikuttavuus.services.analytics.data import (
    CohortData,
)
from vaikuttavuus.services.analytics.publication import Published

FUNNEL_Z = (1.959963984540054, 3.090232306167813)
"""Funnel-plot limits: 95 % and 99.8 % (z = 1.96 and 3.09)."""


@dataclass(frozen=True)
class Funnel:
    """Responder share of the primary outcome by unit and by professional, with the funnel
    limits p₀ ± z·√(p₀(1 − p₀)/n) for z = 1.96 and 3.09 (``p0`` over the whole cohort)."""

    score: str
    follow_up: str | None
    p0: float | None
    n_total: int
    groups: dict[str, Published]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "follow_up": self.follow_up,
            "p0": plain(self.p0),
            "n_total": self.n_total,
            "groups": {name: table.to_dict() for name, table in self.groups.items()},
        }


class FunnelSection(CohortData):
    """Funnel plots of the responder share by unit and by professional."""

    @cached_property
    def funnel(self) -> Funnel:
        rule = self.spec.primary_outcome
        columns = [
            "group",
            "n",
            "responders",
            "share",
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
                .agg(n=("responder", "size"), responders=("responder", "sum"))
                .reset_index()
            )
            grouped["share"] = grouped["responders"] / grouped["n"]
            spread = np.sqrt(p0 * (1 - p0) / grouped["n"])
            for z, suffix in zip(FUNNEL_Z, ("95", "998"), strict=True):
                grouped[f"low_{suffix}"] = np.clip(p0 - z * spread, 0.0, 1.0)
                grouped[f"high_{suffix}"] = np.clip(p0 + z * spread, 0.0, 1.0)
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
                derived={"n": columns[2:], "responders": ["share", "position"]},
                groups=["group"],
                suppress_zeros=["responders"],
            )
        return Funnel(self.primary_score, self.follow_up, p0, len(table), published)

    def funnel_curve(self, n_max: int, points: int = 60) -> pd.DataFrame:
        """The funnel limits over n = 1 … ``n_max`` for the chart and its table."""
        p0 = self.funnel.p0
        n = np.unique(np.geomspace(1, max(n_max, 2), points).round().astype(int))
        frame = pd.DataFrame({"n": n})
        if p0 is None:
            return frame
        spread = np.sqrt(p0 * (1 - p0) / n)
        for z, suffix in zip(FUNNEL_Z, ("95", "998"), strict=True):
            frame[f"low_{suffix}"] = np.clip(p0 - z * spread, 0.0, 1.0)
            frame[f"high_{suffix}"] = np.clip(p0 + z * spread, 0.0, 1.0)
        return frame
