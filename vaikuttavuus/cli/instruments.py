"""Instrument commands: ``vaikuttavuus instruments …`` and ``vaikuttavuus score``.

Plain click commands (no Flask app is needed); definitions are read from
:func:`vaikuttavuus.paths.questionnaires_dir`. Problems with the user's input are reported as
one ``Error: …`` line on stderr with exit code 1 (unreadable or invalid data) or 2 (an unknown
instrument, version, value set or language); a broken definition folder lists its problems.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vaikuttavuus.domain.defaults import LANGUAGES
from vaikuttavuus.paths import questionnaires_dir

if TYPE_CHECKING:
    from vaikuttavuus.definitions import Problem
    from vaikuttavuus.domain.specs import InstrumentSpec


OUTPUT_DECIMALS = 10
"""Scores are printed with up to this many significant digits (drops float noise)."""


class UsageProblem(click.ClickException):
    """A one-line error with exit code 2: the command was asked for something that is not there."""

    exit_code = 2


# --------------------------------------------------------------------------------------------
# Loading definitions
# --------------------------------------------------------------------------------------------


def _catalogue() -> list[InstrumentSpec]:
    from vaikuttavuus.definitions import DefinitionError, load_instruments

    folder = questionnaires_dir()
    if not folder.is_dir():
        raise click.ClickException(f"the questionnaire folder {folder} does not exist")
    try:
        return load_instruments(folder)
    except DefinitionError as error:
        raise click.ClickException(
            "the instrument definitions are invalid (run `vaikuttavuus instruments validate "
            f"{folder}`):\n{error}"
        ) from error


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for versions: numeric parts as numbers (``"10" > "9"``), others as text."""
    parts = re.split(r"[.\-_]", version)
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts)


def find_instrument(
    specs: list[InstrumentSpec], instrument_id: str, version: str | None = None
) -> InstrumentSpec:
    """The requested version of an instrument, or its latest version."""
    versions = [spec for spec in specs if spec.id == instrument_id]
    if not versions:
        known = ", ".join(sorted({spec.id for spec in specs})) or "none"
        raise UsageProblem(f"unknown instrument '{instrument_id}' (known: {known})")
    if version is None:
        return max(versions, key=lambda spec: version_key(spec.version))
    for spec in versions:
        if spec.version == version:
            return spec
    available = ", ".join(sorted((spec.version for spec in versions), key=version_key))
    raise UsageProblem(
        f"instrument '{instrument_id}' has no version '{version}' (versions: {available})"
    )


def _load(instrument_id: str, version: str | None) -> InstrumentSpec:
    return find_instrument(_catalogue(), instrument_id, version)


# --------------------------------------------------------------------------------------------
# vaikuttavuus instruments …
# --------------------------------------------------------------------------------------------


@click.group("instruments")
def instruments() -> None:
    """Instrument definitions: list, show, validate, and convert to and from FHIR."""


@instruments.command("list")
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
    show_default=True,
)  # fmt: skip
def list_instruments(output_format: str) -> None:
    """List every instrument version in the questionnaire folder."""
    specs = sorted(_catalogue(), key=lambda spec: (spec.id, version_key(spec.version)))
    rows = [
        {
            "id": spec.id,
            "version": spec.version,
            "kind": spec.kind,
            "title": spec.title.fi,
            "items": len(spec.items),
            "placeholder_texts": spec.placeholder_texts,
        }
        for spec in specs
    ]
    if output_format == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    headers = ["id", "version", "kind", "items", "placeholder", "title (fi)"]
    table = [
        [
            str(row["id"]),
            str(row["version"]),
            str(row["kind"]),
            str(row["items"]),
            "yes" if row["placeholder_texts"] else "no",
            str(row["title"]),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [headers, *table]) for i in range(len(headers) - 1)]
    for line in [headers, *table]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]))


@instruments.command("show")
@click.argument("instrument_id", metavar="ID")
@click.option("--version", "version", default=None, help="Version (default: the latest).")
@click.option(
    "--format", "output_format", type=click.Choice(["json", "text"]), default="text",
    show_default=True,
)  # fmt: skip
@click.option(
    "--language", type=click.Choice(list(LANGUAGES)), default="fi", show_default=True,
    help="Language of the texts in the text format.",
)  # fmt: skip
def show_instrument(
    instrument_id: str, version: str | None, output_format: str, language: str
) -> None:
    """Show one instrument definition.

    The JSON format is the whole definition (sections with their items in questionnaire
    order) plus ``items``, the same items as one flat list in order, each with its
    ``section``.
    """
    spec = _load(instrument_id, version)
    if output_format == "json":
        click.echo(json.dumps(definition_json(spec), ensure_ascii=False, indent=2))
        return
    click.echo(_describe(spec, language))


def definition_json(spec: InstrumentSpec) -> dict[str, Any]:
    """The definition as JSON-ready data, with a derived flat ``items`` list in order."""
    data: dict[str, Any] = spec.model_dump(mode="json", exclude_none=True)
    data["items"] = [
        {"section": section["id"], **item}
        for section in data["sections"]
        for item in section["items"]
    ]
    return data


def _describe(spec: InstrumentSpec, language: str) -> str:
    from vaikuttavuus.domain.scoring import score_metadata

    lines = [
        f"{spec.id} version {spec.version} ({spec.kind}): {spec.title.get(language)}",
        f"languages: {', '.join(spec.languages)}"
        + ("; texts are placeholders for licensed wording" if spec.placeholder_texts else ""),
        f"licence: {spec.licence}",
        f"source: {spec.source}",
    ]
    for section in spec.sections:
        lines.append("")
        lines.append(f"[{section.id}] {section.title.get(language)}")
        for item in section.items:
            lines.append(f"  {item.id} ({item.type}{'' if item.required else ', optional'})")
            lines.append(f"      {item.text.get(language)}")
            options = spec.options_for(item)
            if options:
                lines.append(
                    "      " + "; ".join(f"{o.code} = {o.text.get(language)}" for o in options)
                )
            elif item.value_range is not None:
                low, high = item.value_range
                lines.append(f"      {low:g}–{high:g}" + (f" {item.unit}" if item.unit else ""))
            if item.enable_when:
                joined = (" or " if item.enable_behavior == "any" else " and ").join(
                    f"{c.item} {c.operator} {c.value}" if c.operator != "exists" else c.item
                    for c in item.enable_when
                )
                lines.append(f"      shown when: {joined}")
    if spec.scores:
        lines.append("")
        lines.append("scores:")
        for info in score_metadata(spec):
            details = [info.method]
            if info.range is not None:
                details.append(f"{info.range[0]:g}–{info.range[1]:g}")
            if info.bands:
                details.append("/".join(info.bands))
            if info.value_sets:
                details.append("value sets: " + ", ".join(info.value_sets))
            if info.direction:
                details.append(info.direction.replace("_", " "))
            if info.minimal_important_change:
                details.append(f"MIC {info.minimal_important_change:g}")
            lines.append(f"  {info.id}: {info.label_in(language)} ({'; '.join(details)})")
    return "\n".join(lines)


@instruments.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
def validate_definitions(path: Path) -> None:
    """Validate one definition file or every *.yaml file in a folder."""
    from vaikuttavuus.definitions import DefinitionError, Problem, load_instrument

    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise click.ClickException(f"{path} holds no .yaml definition files")
    elif path.is_file():
        files = [path]
    else:
        raise click.ClickException(f"{path} does not exist")
    problems: list[Problem] = []
    specs: list[tuple[Path, InstrumentSpec]] = []
    for file in files:
        try:
            specs.append((file, load_instrument(file)))
        except DefinitionError as error:
            problems.extend(error.problems)
    seen: dict[str, Path] = {}
    for file, spec in specs:
        if spec.key in seen:
            problems.append(
                Problem(str(file), spec.key, f"the same id and version is also in {seen[spec.key]}")
            )
        seen.setdefault(spec.key, file)
        expected = f"{spec.id}-{spec.version}"
        if file.stem != expected:
            click.echo(
                f"warning: {file}: by convention this file is named {expected}.yaml", err=True
            )
    if problems:
        for problem in problems:
            click.echo(str(problem))
        failed = len({problem.file for problem in problems})
        click.echo(f"{len(problems)} problem(s) in {failed} of {len(files)} file(s)", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"OK: {len(specs)} instrument definition(s) valid")


@instruments.command("export-fhir")
@click.argument("instrument_id", metavar="ID")
@click.option("--version", "version", default=None, help="Version (default: the latest).")
@click.option(
    "--language", type=click.Choice(list(LANGUAGES)), default="fi", show_default=True,
    help="Primary language; the others are added as translations.",
)  # fmt: skip
def export_fhir(instrument_id: str, version: str | None, language: str) -> None:
    """Print an instrument as a FHIR R4 Questionnaire (JSON)."""
    from vaikuttavuus.fhir import FhirError, questionnaire_to_fhir

    spec = _load(instrument_id, version)
    try:
        resource = questionnaire_to_fhir(spec, language)
    except FhirError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(resource, ensure_ascii=False, indent=2))


@instruments.command("import-fhir")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", type=click.Path(path_type=Path), default=None,
    help="Write the YAML definition here (default: print it).",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def import_fhir(file: Path, out: Path | None, force: bool) -> None:
    """Turn a FHIR Questionnaire (JSON) into a YAML definition in our format."""
    import yaml

    from vaikuttavuus.definitions import DefinitionError
    from vaikuttavuus.fhir import FhirError, questionnaire_from_fhir

    if out is not None and out.exists() and not force:
        raise click.ClickException(f"{out} exists; use --force to overwrite it")
    try:
        resource = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror or error}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{file} is not JSON: {error}") from error
    if not isinstance(resource, dict):
        raise click.ClickException(f"{file} does not hold a FHIR resource (a JSON object)")
    try:
        definition = questionnaire_from_fhir(resource)
    except (FhirError, DefinitionError) as error:
        raise click.ClickException(f"{file}: {error}") from error
    for note in definition.get("notes", []):
        click.echo(f"note: {note}", err=True)
    text = yaml.safe_dump(definition, allow_unicode=True, sort_keys=False, width=100)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror or error}") from error
    click.echo(f"wrote {out}", err=True)


# --------------------------------------------------------------------------------------------
# vaikuttavuus score
# --------------------------------------------------------------------------------------------


@click.command("score")
@click.argument("instrument_id", metavar="ID")
@click.option(
    "--input", "input_path", required=True, type=click.Path(path_type=Path),
    help="CSV file: one response per row, columns named by item id; blank = missing.",
)  # fmt: skip
@click.option(
    "--format", "output_format", type=click.Choice(["json", "csv"]), default="json",
    show_default=True,
)  # fmt: skip
@click.option("--value-set", "value_set", default=None, help="Value set (e.g. for eq5d5l).")
@click.option("--version", "version", default=None, help="Version (default: the latest).")
def score(
    instrument_id: str,
    input_path: Path,
    output_format: str,
    value_set: str | None,
    version: str | None,
) -> None:
    """Score the responses in a CSV file and print the scores.

    Columns that are not items of the instrument (e.g. ``respondent``) are carried through
    into every output row; a score that cannot be computed is null (an empty cell in CSV).
    """
    import pandas as pd

    from vaikuttavuus.domain.scoring import ScoringError, score_frame
    from vaikuttavuus.domain.specs import ValueSetScore
    from vaikuttavuus.domain.spreadsheet import spreadsheet_safe

    spec = _load(instrument_id, version)
    value_set_scores = [s for s in spec.scores if isinstance(s, ValueSetScore)]
    if value_set is not None:
        if not value_set_scores:
            raise UsageProblem(f"instrument '{spec.id}' has no value-set score; drop --value-set")
        known = sorted({name for s in value_set_scores for name in s.value_sets})
        if any(value_set not in s.value_sets for s in value_set_scores):
            raise UsageProblem(f"unknown value set '{value_set}' (known: {', '.join(known)})")
    answers = _read_csv(input_path)
    item_ids = set(spec.item_ids)
    item_columns = [column for column in answers.columns if column in item_ids]
    extra_columns = [column for column in answers.columns if column not in item_ids]
    if not item_columns and len(answers.columns) > 0:
        sample = ", ".join(spec.item_ids[:3])
        raise click.ClickException(
            f"{input_path}: no column is an item of {spec.id} (expected e.g. {sample})"
        )
    clashes = [column for column in extra_columns if column in {s.id for s in spec.scores}]
    if clashes:
        raise click.ClickException(
            f"{input_path}: column(s) {', '.join(clashes)} clash with {spec.id} score names; "
            "rename or remove them"
        )
    answers.index = pd.RangeIndex(2, len(answers) + 2)  # CSV line numbers (line 1 = header)
    try:
        scores = score_frame(spec, answers[item_columns], value_set=value_set)
    except ScoringError as error:
        where = f", line {error.row}" if error.row is not None else ""
        raise click.ClickException(f"{input_path}{where}: {error.reason}") from error
    extras = answers[extra_columns]
    extras = extras.mask(extras == "")
    result = pd.concat([extras, scores], axis=1)
    if output_format == "json":
        records = json.loads(result.to_json(orient="records", double_precision=OUTPUT_DECIMALS))
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        buffer = io.StringIO()
        # carried-through columns come from the input file: no cell may start a formula
        result = result.rename(columns=lambda name: spreadsheet_safe(str(name))).map(
            lambda value: spreadsheet_safe(value) if isinstance(value, str) else value
        )
        result.to_csv(
            buffer, index=False, na_rep="", float_format=f"%.{OUTPUT_DECIMALS}g",
            lineterminator="\n",
        )  # fmt: skip
        click.echo(buffer.getvalue(), nl=False)


def _read_csv(path: Path) -> Any:
    """Read the answers CSV as text cells (blank = missing); comma, semicolon or tab."""
    import pandas as pd

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            sample = handle.read(65536)
    except FileNotFoundError as error:
        raise click.ClickException(f"cannot read {path}: no such file") from error
    except IsADirectoryError as error:
        raise click.ClickException(f"cannot read {path}: it is a folder") from error
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise click.ClickException(f"cannot read {path}: not UTF-8 text") from error
    if not sample.strip():
        raise click.ClickException(f"{path} is empty")
    header = sample.splitlines()[0]
    delimiter = max([",", ";", "\t"], key=header.count)
    names = [name.strip() for name in next(csv.reader([header], delimiter=delimiter))]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise click.ClickException(f"{path}: duplicate column(s) {', '.join(duplicated)}")
    try:
        frame = pd.read_csv(
            path, sep=delimiter, dtype=str, keep_default_na=False, encoding="utf-8-sig",
            skipinitialspace=True,
        )  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "parse error"
        raise click.ClickException(f"cannot read {path}: {first_line}") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


COMMANDS: list[click.Command] = [instruments, score]
"""The commands this module adds to ``vaikuttavuus``."""
