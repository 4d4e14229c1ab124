"""Load the definition folders into the database (``vaikuttavuus init``), idempotently.

Instruments: each ``id@version`` is stored once; a file whose content changed but kept its
version is refused (a changed definition is a new version, so stored answers keep theirs).
Pilots, the measure catalogue and the costing catalogue are upserted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vaikuttavuus import paths
from vaikuttavuus.database import AnySession
from vaikuttavuus.definitions import (
    MEASURES_FILE,
    DefinitionError,
    Problem,
    load_instruments,
    load_pilot_files,
    read_yaml,
    validate,
)
from vaikuttavuus.domain.specs import (
    BandScore,
    FlagScore,
    InstrumentSpec,
    MeasureCatalogue,
    PilotSpec,
    ValueSetScore,
    utility_score,
)
from vaikuttavuus.models import (
    Arm,
    InstrumentVersion,
    Pilot,
    TimePoint,
    TimePointInstrument,
)


@dataclass
class SyncReport:
    instruments_added: list[str] = field(default_factory=list)
    instruments_unchanged: list[str] = field(default_factory=list)
    pilots_added: list[str] = field(default_factory=list)
    pilots_updated: list[str] = field(default_factory=list)
    costing: str = ""

    def lines(self) -> list[str]:
        out = []
        if self.instruments_added:
            out.append("instruments added: " + ", ".join(self.instruments_added))
        if self.instruments_unchanged:
            out.append(f"instruments unchanged: {len(self.instruments_unchanged)}")
        if self.pilots_added:
            out.append("pilots added: " + ", ".join(self.pilots_added))
        if self.pilots_updated:
            out.append("pilots updated: " + ", ".join(self.pilots_updated))
        if self.costing:
            out.append(self.costing)
        return out


def definition_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_MEASURES_CACHE: dict[Path, tuple[tuple[int, int], MeasureCatalogue]] = {}


def load_measure_catalogue(directory: Path | None = None) -> MeasureCatalogue:
    """The clinical measure catalogue, read again only when its file changed (the patient
    page uses it on every view; parsing the YAML took longer than the page's queries)."""
    path = (directory or paths.cohorts_dir()) / MEASURES_FILE
    try:
        status = path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
    except OSError:
        stamp = (-1, -1)
    cached = _MEASURES_CACHE.get(path)
    if cached is not None and cached[0] == stamp and stamp[0] >= 0:
        return cached[1]
    catalogue = validate(MeasureCatalogue, read_yaml(path), str(path))
    _MEASURES_CACHE[path] = (stamp, catalogue)
    return catalogue


def load_all_definitions() -> tuple[list[InstrumentSpec], list[PilotSpec], MeasureCatalogue]:
    """Read and cross-check every definition folder; raise one DefinitionError for all."""
    instruments = load_instruments(paths.questionnaires_dir())
    files = load_pilot_files(paths.cohorts_dir(), instrument_ids={spec.id for spec in instruments})
    pilots = [spec for _path, spec in files]
    sources = {spec.id: str(path) for path, spec in files}
    measures = load_measure_catalogue()
    _check_outcome_scores(instruments, pilots, sources)
    _check_analyses(instruments, pilots, measures, sources)
    return instruments, pilots, measures


def _check_outcome_scores(
    instruments: list[InstrumentSpec], pilots: list[PilotSpec], sources: dict[str, str]
) -> None:
    latest = latest_versions(instruments)
    problems = []
    for pilot in pilots:
        rules = [("primary_outcome", pilot.primary_outcome)] + [
            (f"secondary_outcomes[{n}]", rule) for n, rule in enumerate(pilot.secondary_outcomes)
        ]
        for location, rule in rules:
            spec = latest[rule.instrument]
            if rule.score not in {score.id for score in spec.scores}:
                problems.append(
                    Problem(
                        sources.get(pilot.id, pilot.id),
                        location,
                        f"instrument '{rule.instrument}' has no score '{rule.score}'",
                    )
                )
    if problems:
        raise DefinitionError(problems)


DEMOGRAPHIC_COVARIATES = ("age", "sex", "lives_alone", "unit", "arm")
"""Covariates read from the enrolment and the person (:mod:`vaikuttavuus.services.analytics`)."""


def _numeric_scores(spec: InstrumentSpec) -> set[str]:
    return {score.id for score in spec.scores if not isinstance(score, BandScore | FlagScore)}


def _check_analyses(
    instruments: list[InstrumentSpec],
    pilots: list[PilotSpec],
    measures: MeasureCatalogue,
    sources: dict[str, str] | None = None,
) -> None:
    """The declared analysis of each pilot names only what exists: its outcome scores (numeric,
    scheduled at baseline and at the primary time point), the utility score and its value set,
    and its covariates (demographics, ``baseline_<instrument>_<score>`` of an instrument
    scheduled at baseline, or a clinical measure of the pilot)."""
    latest = {spec.id: spec for spec in sorted(instruments, key=lambda s: _version_key(s.version))}
    problems = []
    for pilot in pilots:
        where = (sources or {}).get(pilot.id) or str(paths.cohorts_dir() / f"{pilot.id}.yaml")
        plan = pilot.primary_plan()
        baseline = set(pilot.baseline.instruments)
        at_primary = set(pilot.time_point(plan.time_point).instruments)
        outcomes = [("analysis → primary → outcome", plan.outcome)] + [
            ("analysis → secondary_outcomes", name) for name in pilot.analysis.secondary_outcomes
        ]
        for location, name in outcomes:
            instrument, score = name.split(".", 1)
            spec = latest.get(instrument)
            if spec is None:
                problems.append(Problem(where, location, f"unknown instrument '{instrument}'"))
            elif score not in _numeric_scores(spec):
                problems.append(
                    Problem(where, location, f"'{name}' is not a numeric score of '{instrument}'")
                )
            elif instrument not in baseline or (
                location.endswith("outcome") and instrument not in at_primary
            ):
                problems.append(
                    Problem(
                        where,
                        location,
                        f"'{instrument}' must be scheduled at the baseline and at "
                        f"'{plan.time_point}'",
                    )
                )
        problems += _check_utility(pilot, latest, where)
        problems += _check_guidance_flag(pilot, latest, where)
        value_set = pilot.analysis.value_set
        if value_set is not None:
            found = utility_score(pilot, latest)
            utility = latest.get(found[0]) if found is not None else None
            known = {
                key
                for score in (utility.scores if utility is not None else ())
                if isinstance(score, ValueSetScore)
                for key in score.value_sets
            }
            if value_set not in known:
                problems.append(
                    Problem(
                        where,
                        "analysis → value_set",
                        f"unknown value set '{value_set}' (known: {', '.join(sorted(known))})",
                    )
                )
        measure_ids = {m.id for m in measures.measures if not m.pilots or pilot.id in m.pilots}
        for position, name in enumerate(pilot.covariates):
            if name in DEMOGRAPHIC_COVARIATES or name in measure_ids:
                if name == "arm" and plan.comparison is not None:
                    problems.append(
                        Problem(
                            where,
                            f"covariates[{position}]",
                            "'arm' is the comparison of the primary analysis, not a covariate",
                        )
                    )
                continue
            if name.startswith("baseline_"):
                rest = name.removeprefix("baseline_")
                match = next(
                    (
                        code
                        for code in sorted(baseline, key=len, reverse=True)
                        if rest.startswith(code + "_")
                    ),
                    None,
                )
                if match is not None and rest.removeprefix(match + "_") in _numeric_scores(
                    latest[match]
                ):
                    continue
            problems.append(
                Problem(
                    where,
                    f"covariates[{position}]",
                    f"unknown covariate '{name}': use one of {', '.join(DEMOGRAPHIC_COVARIATES)}, "
                    "baseline_<instrument>_<score> of an instrument scheduled at the baseline, "
                    "or a clinical measure of this pilot",
                )
            )
    if problems:
        raise DefinitionError(problems)


def _check_utility(
    pilot: PilotSpec, latest: dict[str, InstrumentSpec], where: str
) -> list[Problem]:
    """A declared utility names a numeric score of an instrument scheduled at the baseline
    and at a follow-up (QALYs are the area under its curve from the baseline)."""
    declared = pilot.analysis.utility
    if declared is None or declared == "none":
        return []
    instrument, score = declared.split(".", 1)
    spec = latest.get(instrument)
    location = "analysis → utility"
    if spec is None:
        return [Problem(where, location, f"unknown instrument '{instrument}'")]
    if score not in _numeric_scores(spec):
        return [Problem(where, location, f"'{declared}' is not a numeric score of '{instrument}'")]
    follow_ups = [tp for tp in pilot.time_points if not tp.baseline]
    if instrument not in pilot.baseline.instruments or not any(
        instrument in tp.instruments for tp in follow_ups
    ):
        return [
            Problem(
                where,
                location,
                f"'{instrument}' must be scheduled at the baseline and at a follow-up",
            )
        ]
    return []


def _check_guidance_flag(
    pilot: PilotSpec, latest: dict[str, InstrumentSpec], where: str
) -> list[Problem]:
    """A declared guidance flag names a score of a baseline instrument that has a flag."""
    declared = pilot.analysis.guidance_flag
    if declared is None:
        return []
    instrument, score = declared.split(".", 1)
    spec = latest.get(instrument)
    location = "analysis → guidance_flag"
    if spec is None or instrument not in pilot.baseline.instruments:
        return [Problem(where, location, f"'{instrument}' is not scheduled at the baseline")]
    if not any(isinstance(s, FlagScore) and s.of == score for s in spec.scores):
        return [Problem(where, location, f"'{instrument}' has no flag of '{score}'")]
    return []


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in version.split("."))


def latest_versions(instruments: list[InstrumentSpec]) -> dict[str, InstrumentSpec]:
    """Instrument id → its latest version among ``instruments`` (the one ``init`` makes
    current)."""
    return {spec.id: spec for spec in sorted(instruments, key=lambda s: _version_key(s.version))}


def sync_definitions(session: AnySession) -> SyncReport:
    instruments, pilots, _measures = load_all_definitions()
    report = SyncReport()
    _sync_instruments(session, instruments, report)
    for spec in pilots:
        _sync_pilot(session, spec, report)
    from vaikuttavuus.services.catalogue import sync_costing

    report.costing = sync_costing(session)
    session.flush()
    return report


def _sync_instruments(session: AnySession, specs: list[InstrumentSpec], report: SyncReport) -> None:
    problems = []
    for spec in specs:
        data = spec.model_dump(mode="json")
        digest = definition_hash(data)
        existing = session.scalar(
            select(InstrumentVersion).where(
                InstrumentVersion.code == spec.id, InstrumentVersion.version == spec.version
            )
        )
        if existing is None:
            session.add(
                InstrumentVersion(
                    code=spec.id,
                    version=spec.version,
                    kind=spec.kind,
                    title=spec.title.model_dump(),
                    definition=data,
                    definition_hash=digest,
                )
            )
            report.instruments_added.append(spec.key)
        elif existing.definition_hash != digest:
            problems.append(
                Problem(
                    str(paths.questionnaires_dir()),
                    spec.key,
                    "the definition changed but its version did not; give the changed "
                    "definition a new version so stored answers keep their meaning",
                )
            )
        else:
            report.instruments_unchanged.append(spec.key)
    if problems:
        raise DefinitionError(problems)
    session.flush()
    # Mark the newest version of each instrument current.
    by_code: dict[str, list[InstrumentVersion]] = {}
    for version in session.scalars(select(InstrumentVersion)):
        by_code.setdefault(version.code, []).append(version)
    for versions in by_code.values():
        newest = max(versions, key=lambda v: _version_key(v.version))
        for version in versions:
            version.is_current = version is newest


def _sync_pilot(session: AnySession, spec: PilotSpec, report: SyncReport) -> None:
    data = spec.model_dump(mode="json")
    digest = definition_hash(data)
    pilot = session.scalar(select(Pilot).where(Pilot.code == spec.id))
    if pilot is None:
        pilot = Pilot(
            code=spec.id, version=spec.version, name={}, definition={}, definition_hash=""
        )
        session.add(pilot)
        report.pilots_added.append(spec.id)
    elif pilot.definition_hash == digest:
        return
    else:
        report.pilots_updated.append(spec.id)
    pilot.version = spec.version
    pilot.name = spec.name.model_dump()
    pilot.definition = data
    pilot.definition_hash = digest

    arms = {arm.code: arm for arm in pilot.arms}
    for ordinal, arm_spec in enumerate(spec.arms):
        arm = arms.get(arm_spec.id)
        if arm is None:
            arm = Arm(code=arm_spec.id, name={})
            pilot.arms.append(arm)
        arm.name = arm_spec.name.model_dump()
        arm.is_reference = arm_spec.id == spec.reference_arm.id
        arm.ordinal = ordinal

    time_points = {tp.code: tp for tp in pilot.time_points}
    for ordinal, tp_spec in enumerate(spec.time_points):
        tp = time_points.get(tp_spec.id)
        if tp is None:
            tp = TimePoint(
                code=tp_spec.id,
                label_text={},
                offset_days=0,
                window_open_days=0,
                window_close_days=0,
            )
            pilot.time_points.append(tp)
        tp.label_text = tp_spec.label.model_dump()
        tp.offset_days = tp_spec.offset_days
        tp.window_open_days = tp_spec.window_open_days
        tp.window_close_days = tp_spec.window_close_days
        tp.is_baseline = tp_spec.baseline
        tp.ordinal = ordinal
        wanted = list(tp_spec.instruments)
        current = {link.instrument_code: link for link in tp.instruments}
        for code in list(current):
            if code not in wanted:
                tp.instruments.remove(current.pop(code))
        for position, code in enumerate(wanted):
            link = current.get(code)
            if link is None:
                link = TimePointInstrument(instrument_code=code)
                tp.instruments.append(link)
            link.ordinal = position


# -- reading specs back from the database -------------------------------------------------------


_INSTRUMENT_CACHE: dict[str, InstrumentSpec] = {}
_PILOT_CACHE: dict[str, PilotSpec] = {}


def instrument_spec(version: InstrumentVersion) -> InstrumentSpec:
    """The validated spec of a stored instrument version (cached by content hash)."""
    spec = _INSTRUMENT_CACHE.get(version.definition_hash)
    if spec is None:
        spec = InstrumentSpec.model_validate(version.definition)
        _INSTRUMENT_CACHE[version.definition_hash] = spec
    return spec


def pilot_spec(pilot: Pilot) -> PilotSpec:
    """The validated spec of a stored pilot (cached by content hash)."""
    spec = _PILOT_CACHE.get(pilot.definition_hash)
    if spec is None:
        spec = PilotSpec.model_validate(pilot.definition)
        _PILOT_CACHE[pilot.definition_hash] = spec
    return spec


def current_instrument(session: AnySession, code: str) -> InstrumentVersion:
    version = session.scalar(
        select(InstrumentVersion).where(
            InstrumentVersion.code == code, InstrumentVersion.is_current.is_(True)
        )
    )
    if version is None:
        raise LookupError(f"instrument '{code}' is not loaded; run `vaikuttavuus init`")
    return version
