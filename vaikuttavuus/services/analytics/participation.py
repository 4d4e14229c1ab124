"""Enrolment, response rates and data quality of a cohort."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus.domain import outcomes
from vaikuttavuus.services.analytics.data import (
    CohortData,
)
from vaikuttavuus.services.analytics.publication import ALL, Published


@dataclass(frozen=True)
class Enrolment:
    """Enrolled and withdrawn persons per arm (and ``all``)."""

    table: Published

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.to_dict()}


@dataclass(frozen=True)
class ResponseRates:
    """Response rate per time point and arm: ``invited`` = completed + expired + opted out
    (invitations whose answer was asked for and can no longer come), ``responded`` =
    completed, ``open`` = windows still open (not in the rate)."""

    table: Published

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.to_dict()}


@dataclass(frozen=True)
class DataQuality:
    """Missing items per instrument and time point, late answers per time point, imports, and
    how the answers were given per arm (mode, and answered by someone else)."""

    items: Published
    late: Published
    imports: Published
    modes: Published

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items.to_dict(),
            "late": self.late.to_dict(),
            "imports": self.imports.to_dict(),
            "modes": self.modes.to_dict(),
        }


RESPONSE_MODES = ("web", "phone", "paper", "imported")
"""How answers are given (``responses.mode``), in the order the data-quality table lists them."""
STAFF_MODES = ("phone", "paper")
"""Modes of answers entered by staff (assisted entry)."""


class ParticipationSections(CohortData):
    """Enrolment, response rates and data quality of a cohort."""

    @cached_property
    def enrolment(self) -> Enrolment:
        roster = self.roster
        rows = []
        for arm in [*self.arms, ALL]:
            part = roster if arm == ALL else roster[roster["arm"] == arm]
            rows.append(
                {
                    "arm": arm,
                    "enrolled": len(part),
                    "withdrawn": int((part["status"] == "withdrawn").sum()),
                }
            )
        table = pd.DataFrame(rows)
        return Enrolment(
            self._publish(
                "enrolment",
                table,
                counts=["enrolled", "withdrawn"],
                groups=["arm"],
                total_label=ALL,
                suppress_zeros=False,
            )
        )

    @cached_property
    def response_rates(self) -> ResponseRates:
        counts = self.invitations
        grid = pd.MultiIndex.from_product(
            [self.shown_time_points, self.arms], names=["time_point", "arm"]
        ).to_frame(index=False)
        if counts.empty:
            wide = grid.assign(completed=0, expired=0, opted_out=0, open=0)
        else:
            pivot = counts.pivot_table(
                index=["time_point", "arm"], columns="status", values="n", aggfunc="sum"
            )
            wide = grid.merge(pivot.reset_index(), on=["time_point", "arm"], how="left")
        for status in ("completed", "expired", "opted_out", "open"):
            if status not in wide.columns:
                wide[status] = 0
            wide[status] = wide[status].fillna(0).astype(int)
        wide["invited"] = wide["completed"] + wide["expired"] + wide["opted_out"]
        wide["responded"] = wide["completed"]
        rates = outcomes.response_rates(
            wide[["arm", "time_point", "invited", "responded"]], by=("arm", "time_point")
        ).table
        open_counts = (
            pd.concat(
                [
                    wide[["arm", "time_point", "open"]],
                    wide.assign(arm=ALL)[["arm", "time_point", "open"]],
                ]
            )
            .groupby(["arm", "time_point"], sort=False)["open"]
            .sum()
        )
        rates["open"] = open_counts.reindex(
            pd.MultiIndex.from_frame(rates[["arm", "time_point"]])
        ).to_numpy()
        rates = rates[
            ["time_point", "arm", "invited", "responded", "rate", "ci_low", "ci_high", "open"]
        ]
        return ResponseRates(
            self._publish(
                "response_rates",
                rates,
                counts=["invited", "responded", "open"],
                derived={
                    "invited": ["rate", "ci_low", "ci_high"],
                    "responded": ["rate", "ci_low", "ci_high"],
                },
                groups=["arm"],
                strata=["time_point"],
                total_label=ALL,
                suppress_zeros=False,
            )
        )

    @cached_property
    def data_quality(self) -> DataQuality:
        items = []
        for code in self.scheduled_instruments:
            frame = self.scores.get(code)
            spec = self.instruments.get(code)
            if frame is None or spec is None:
                continue
            main = next(
                (s.id for s in spec.scores if s.id in frame and frame[s.id].dtype.kind == "f"),
                None,
            )
            for tp in self.shown_time_points:
                part = frame[frame["time_point"] == tp]
                if code not in self.spec.time_point(tp).instruments:
                    continue
                items.append(
                    {
                        "instrument": code,
                        "time_point": tp,
                        "responses": len(part),
                        "with_missing_items": int((part["items_missing"] > 0).sum())
                        if len(part)
                        else 0,
                        "score_not_computable": int(part[main].isna().sum())
                        if main and len(part)
                        else 0,
                        "assisted": int(part["mode"].isin(STAFF_MODES).sum()) if len(part) else 0,
                    }
                )
        items_table = pd.DataFrame(
            items,
            columns=[
                "instrument",
                "time_point",
                "responses",
                "with_missing_items",
                "score_not_computable",
                "assisted",
            ],
        )
        counts = self.invitations
        late_rows = []
        for tp in self.shown_time_points:
            part = counts[(counts["time_point"] == tp) & (counts["status"] == "completed")]
            late_rows.append(
                {
                    "time_point": tp,
                    "completed": int(part["n"].sum()) if len(part) else 0,
                    "after_reminder": int(part["after_reminder"].sum()) if len(part) else 0,
                    "after_window": int(part["after_window"].sum()) if len(part) else 0,
                }
            )
        late = pd.DataFrame(late_rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            late["share_after_reminder"] = late["after_reminder"] / late["completed"]
        return DataQuality(
            items=self._publish(
                "data_quality",
                items_table,
                counts=["responses", "with_missing_items", "score_not_computable", "assisted"],
                margins=False,
                suppress_zeros=False,
            ),
            late=self._publish(
                "late_answers",
                late,
                counts=["completed", "after_reminder", "after_window"],
                derived={
                    "completed": ["share_after_reminder"],
                    "after_reminder": ["share_after_reminder"],
                },
                margins=False,
                suppress_zeros=False,
            ),
            imports=self._publish(
                "imports",
                self._import_table(),
                counts=["rows_total", "rows_stored", "rows_rejected", "unmatched_rows"],
                margins=False,
                suppress_zeros=False,
            ),
            modes=self._publish(
                "answer_modes",
                self._mode_table(),
                counts=["responses", "proxy"],
                derived={"responses": ["share"], "proxy": ["share_proxy"]},
                groups=["arm", "mode"],
                total_label=ALL,
                suppress_zeros=False,
            ),
        )

    def _mode_table(self) -> pd.DataFrame:
        """Submitted responses of the shown time points per arm and mode (``all`` rows are the
        totals of either), with how many someone else answered (``proxy``), the share of the
        arm's responses and the share by proxy."""
        parts = [
            frame[["enrolment_id", "time_point", "mode", "proxy"]]
            for code, frame in self.scores.items()
            if code in self.scheduled_instruments and len(frame)
        ]
        columns = ["enrolment_id", "time_point", "mode", "proxy"]
        answers = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        answers = answers[answers["time_point"].isin(self.shown_time_points)]
        arm = answers["enrolment_id"].map(self.roster.set_index("enrolment_id")["arm"])
        rows = []
        for group in [*self.arms, ALL]:
            part = answers if group == ALL else answers[(arm == group).to_numpy()]
            total = len(part)
            for mode in [*RESPONSE_MODES, ALL]:
                chosen = part if mode == ALL else part[part["mode"] == mode]
                rows.append(
                    {
                        "arm": group,
                        "mode": mode,
                        "responses": len(chosen),
                        "proxy": int(chosen["proxy"].astype(bool).sum()),
                        "share": len(chosen) / total if total else np.nan,
                        "share_proxy": chosen["proxy"].astype(bool).mean()
                        if len(chosen)
                        else np.nan,
                    }
                )
        return pd.DataFrame(rows)

    def _import_table(self) -> pd.DataFrame:
        log = self.import_log
        columns = [
            "kind",
            "batches",
            "rows_total",
            "rows_stored",
            "rows_rejected",
            "unmatched_rows",
        ]
        if log.empty:
            return pd.DataFrame(columns=columns)
        unmatched = log["errors"].map(
            lambda errors: len(
                {e.get("line") for e in errors or [] if e.get("code") == "unknown_person"}
            )
        )
        rejected = log["status"] != "stored"
        frame = log.assign(
            unmatched_rows=unmatched,
            rows_rejected=np.where(rejected, log["rows_total"], 0),
            rows_stored=np.where(rejected, 0, log["rows_stored"]),
        )
        table = (
            frame.groupby("kind", sort=True)
            .agg(
                batches=("kind", "size"),
                rows_total=("rows_total", "sum"),
                rows_stored=("rows_stored", "sum"),
                rows_rejected=("rows_rejected", "sum"),
                unmatched_rows=("unmatched_rows", "sum"),
            )
            .reset_index()
        )
        return table[columns]
