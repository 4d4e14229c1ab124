"""Episode costs per arm and the cost structure by cost centre and product."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus.domain import disclosure
from vaikuttavuus.domain.notes import costs_unavailable
from vaikuttavuus.domain.stats import mean_ci
from vaikuttavuus.services.analytics.data import (
    CohortData,
)
from vaikuttavuus.services.analytics.publication import ALL, Published


@dataclass(frozen=True)
class CostSection:
    """Episode costs per arm (persons whose care cycle has ended with complete cost data; the
    column ``n_missing`` counts those whose costs are missing: not received, never 0 €), and
    the cost structure per arm by cost centre and by product (mean euros per person of the
    arm, total, share)."""

    target_year: int
    window: tuple[int, int]
    by_arm: Published
    by_cost_centre: Published
    by_product: Published
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_year": self.target_year,
            "window_days": list(self.window),
            "by_arm": self.by_arm.to_dict(),
            "by_cost_centre": self.by_cost_centre.to_dict(),
            "by_product": self.by_product.to_dict(),
            "notes": list(self.notes),
        }


class CostSections(CohortData):
    """Episode costs per arm and the cost structure by cost centre and product."""

    def _structure(self, breakdown: pd.DataFrame, arms: pd.Series, column: str) -> pd.DataFrame:
        """Mean euros per person and share of the arm's total per category (product or cost
        centre) for each arm; categories the arm did not use are left out."""
        columns = ["arm", column, "n", "mean_eur", "total_eur", "share"]
        if not len(breakdown):
            return pd.DataFrame(columns=columns)
        sums = breakdown.groupby(arms.to_numpy()).sum()
        counts = arms.value_counts()
        pieces = []
        for arm in self.arms:
            if arm not in sums.index:
                continue
            values = sums.loc[arm].to_numpy(dtype=float)
            total = float(values.sum())
            size = int(counts.get(arm, 0))
            pieces.append(
                pd.DataFrame(
                    {
                        "arm": arm,
                        column: [str(c) for c in sums.columns],
                        "n": size,
                        "mean_eur": values / size if size else np.nan,
                        "total_eur": values,
                        "share": values / total if total else np.nan,
                    }
                )
            )
        if not pieces:
            return pd.DataFrame(columns=columns)
        table = pd.concat(pieces, ignore_index=True)
        return table[table["total_eur"] > 0].reset_index(drop=True)[columns]

    @cached_property
    def costs(self) -> CostSection:
        """Episode cost per person by arm, and the cost structure by cost centre and by
        product, of the persons whose care cycle has ended (:attr:`cost_persons`). The
        structure is shown for the arms whose cost is shown."""
        notes: list[str] = []
        arm_columns = [
            "arm",
            "n",
            "n_missing",
            "mean_eur",
            "ci_low_eur",
            "ci_high_eur",
            "median_eur",
            "sd_eur",
            "total_eur",
        ]
        centre_columns = ["arm", "cost_centre", "n", "mean_eur", "total_eur", "share"]
        product_columns = ["arm", "product", "n", "mean_eur", "total_eur", "share"]
        costs = self.episode_costs
        if isinstance(costs, str):
            notes.append(costs_unavailable(costs))
            arm_rows: list[dict[str, Any]] = []
            centre = pd.DataFrame(columns=centre_columns)
            product = pd.DataFrame(columns=product_columns)
        else:
            arms = self.roster.set_index("enrolment_id")["arm"].reindex(costs.totals.index)
            missing_arms = self.roster.loc[self.costs_missing, "arm"]

            def missing_by_arm(arm: str) -> int:
                return int(len(missing_arms) if arm == ALL else (missing_arms == arm).sum())

            arm_rows = []
            for arm in [*self.arms, ALL]:
                values = costs.totals if arm == ALL else costs.totals[arms == arm]
                stats = mean_ci(values)
                arm_rows.append(
                    {
                        "arm": arm,
                        "n": stats.n,
                        "n_missing": missing_by_arm(arm),
                        "mean_eur": stats.mean,
                        "ci_low_eur": stats.ci_low,
                        "ci_high_eur": stats.ci_high,
                        "median_eur": float(values.median()) if len(values) else math.nan,
                        "sd_eur": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                        "total_eur": float(values.sum()),
                    }
                )
            centre = self._structure(costs.by_cost_centre, arms, "cost_centre")
            product = self._structure(costs.by_product, arms, "product")
        by_arm = self._publish(
            "costs",
            pd.DataFrame(arm_rows, columns=arm_columns),
            counts=["n", "n_missing"],
            derived={"n": arm_columns[3:]},
            groups=["arm"],
            total_label=ALL,
            suppress_zeros=False,
        )
        # The structure of an arm whose cost is hidden would give its mean away (the parts add
        # up to it, and with the total, to the hidden arm's): only the arms shown.
        shown = by_arm.table
        hidden = set(shown.loc[shown[disclosure.MARKER].astype(bool), "arm"]) if len(shown) else ()
        centre = centre[~centre["arm"].isin(hidden)].reset_index(drop=True)
        product = product[~product["arm"].isin(hidden)].reset_index(drop=True)
        structure_derived = {"n": ["mean_eur", "total_eur", "share"]}
        return CostSection(
            target_year=self.spec.currency_year,
            window=(self.spec.care_cycle.start_days, self.spec.care_cycle.end_days),
            by_arm=by_arm,
            by_cost_centre=self._publish(
                "costs_by_cost_centre",
                centre,
                counts=["n"],
                derived=structure_derived,
                margins=False,
                suppress_zeros=False,
            ),
            by_product=self._publish(
                "costs_by_product",
                product,
                counts=["n"],
                derived=structure_derived,
                margins=False,
                suppress_zeros=False,
            ),
            notes=tuple(notes),
        )
