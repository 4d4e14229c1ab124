"""Read and validate the declarative definition files into domain specifications.

Every problem is reported as a :class:`DefinitionError` whose message names the file, the
place in the file (for instruments, the item id rather than a list index) and the problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from vaikuttavuus.domain.specs import InstrumentSpec, PilotSpec

SpecT = TypeVar("SpecT", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    file: str
    location: str
    message: str

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.file}{where}: {self.message}"


class DefinitionError(Exception):
    """One or more definition files are invalid."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a mapping key written twice: PyYAML would silently
    keep the last value, so a copy-paste slip would change a definition unnoticed."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key '{key}' appears twice (first on line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A definition file as Python data; invalid YAML, a duplicated key and an unreadable file
    are a :class:`DefinitionError` naming the file and the line."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DefinitionError([Problem(str(path), where, f"not valid YAML: {problem}")]) from error
    except OSError as error:
        raise DefinitionError([Problem(str(path), "", f"cannot be read: {error}")]) from error


def describe_location(data: Any, loc: Iterable[int | str]) -> str:
    """Turn a pydantic error location into a readable path, naming list entries by their id.

    ``('sections', 0, 'items', 3, 'options')`` becomes ``sections[symptoms] → items[ipss4] →
    options`` when the entries carry an ``id``.
    """
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int) and isinstance(node, list) and 0 <= key < len(node):
            entry = node[key]
            label = entry.get("id") if isinstance(entry, dict) else None
            if parts:
                parts[-1] = f"{parts[-1]}[{label if label is not None else key}]"
            else:
                parts.append(f"[{label if label is not None else key}]")
            node = entry
            continue
        if isinstance(node, dict) and isinstance(key, str) and node.get("method") == key:
            # pydantic adds the discriminator's value (a score's method) to the path
            continue
        node = node.get(key) if isinstance(node, dict) else None
        parts.append(str(key))
    return " → ".join(parts)


def validate(model: type[SpecT], data: Any, source: str) -> SpecT:
    """Validate ``data`` as ``model``; a failure lists every problem with its location."""
    if not isinstance(data, dict):
        raise DefinitionError([Problem(source, "", "the file must hold a mapping of fields")])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [
            Problem(source, describe_location(data, err["loc"]), _message(err))
            for err in error.errors(include_url=False)
        ]
        raise DefinitionError(problems) from error


def _message(err: Any) -> str:
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    return message


def load_instrument(path: Path) -> InstrumentSpec:
    """Load one instrument version from a YAML file."""
    return validate(InstrumentSpec, read_yaml(path), str(path))


def load_pilot(path: Path) -> PilotSpec:
    """Load one pilot definition from a YAML file."""
    return validate(PilotSpec, read_yaml(path), str(path))


def _load_all(directory: Path, loader: Any) -> list[Any]:
    problems: list[Problem] = []
    specs: list[Any] = []
    for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
        try:
            specs.append(loader(path))
        except DefinitionError as error:
            problems.extend(error.problems)
    if problems:
        raise DefinitionError(problems)
    return specs


def load_instruments(directory: Path) -> list[InstrumentSpec]:
    """Every instrument version in ``directory``; ``id@version`` must be unique."""
    specs: list[InstrumentSpec] = _load_all(directory, load_instrument)
    seen: dict[str, InstrumentSpec] = {}
    for spec in specs:
        if spec.key in seen:
            raise DefinitionError(
                [Problem(str(directory), spec.key, "the same id and version is defined twice")]
            )
        seen[spec.key] = spec
    return specs


MEASURES_FILE = "measures.yaml"


def load_pilots(directory: Path, instrument_ids: Iterable[str]) -> list[PilotSpec]:
    """Every pilot in ``directory`` (all YAML files but the measure catalogue); each time point
    may only name known instruments."""
    return [spec for _path, spec in load_pilot_files(directory, instrument_ids)]


def load_pilot_files(
    directory: Path, instrument_ids: Iterable[str]
) -> list[tuple[Path, PilotSpec]]:
    """:func:`load_pilots` with the file each pilot came from (for messages)."""
    known = set(instrument_ids)
    specs: list[tuple[Path, PilotSpec]] = []
    problems: list[Problem] = []
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    for path in (f for f in files if f.name != MEASURES_FILE):
        try:
            spec = load_pilot(path)
        except DefinitionError as error:
            problems.extend(error.problems)
            continue
        for tp in spec.time_points:
            for instrument in tp.instruments:
                if instrument not in known:
                    problems.append(
                        Problem(
                            str(path),
                            f"time_points[{tp.id}] → instruments",
                            f"unknown instrument '{instrument}'",
                        )
                    )
        for rule in (spec.primary_outcome, *spec.secondary_outcomes):
            if rule.instrument not in known:
                problems.append(
                    Problem(str(path), "primary_outcome", f"unknown instrument '{rule.instrument}'")
                )
        specs.append((path, spec))
    if problems:
        raise DefinitionError(problems)
    ids = [s.id for _path, s in specs]
    if len(ids) != len(set(ids)):
        raise DefinitionError([Problem(str(directory), "", "two pilots share the same id")])
    return specs
