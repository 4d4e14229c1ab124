"""Every message a user reads goes through the catalogues (issue 17).

A static scan, so that an English or internal string cannot slip into the Finnish or Swedish
UI unnoticed:

* Python (the web app's views, forms, services and the pure domain code; not the command
  line, whose operator texts are English, nor the FHIR importer, whose notes only the command
  line prints): a literal text handed to ``flash()``, to ``abort()`` as its description, to
  ``render_template()`` as a title or message, as a form field's label or a validator's
  message, or put into a list of ``notes``/``caveats``/``warnings`` shown with a result. Notes
  written by pure domain code must be codes (``snake_case``) or structured values that the
  presentation layer translates; an f-string or ``str(error)`` there is a sentence in English.
* Templates (pages and PDFs): text between tags, and the ``alt``, ``title``, ``aria-label``,
  ``placeholder`` and ``summary`` attributes, outside ``{{ _(…) }}``.

Each finding names the file and line. Proper nouns and codes that are the same in every
language are in ``ALLOWED_TEXT``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jinja2 import Environment

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "vaikuttavuus"
TEMPLATE_DIRS = (PACKAGE / "templates", ROOT / "reports")
# The command line speaks English to operators; the FHIR importer's notes are printed by it.
PYTHON_EXCLUDED = ("cli/", "migrations/", "fhir.py", "synthetic.py", "bulk.py", "server.py")

# gettext and friends, and Babel's N_() marker (a text marked where it is written and
# translated with _(text) where it is shown, e.g. the import schemas in domain/imports.py)
TRANSLATE = frozenset({"_", "_l", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext",
                       "pgettext", "npgettext", "N_"})  # fmt: skip
NOTE_LISTS = frozenset({"notes", "caveats", "warnings"})
FIELD_SUFFIX = "Field"
TEMPLATE_TEXT_KEYWORDS = frozenset({"title", "message", "heading", "error", "note"})
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
LETTERS = re.compile(r"[A-Za-zÅÄÖåäöÉé]{2,}")

# Files with known findings waiting for their fix (issue 17's analysis notes, done after the
# services and cost-effectiveness work that rewrites these files has landed): their findings
# are not reported, and a file here that has none any more is a failure (remove it then).
KNOWN: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


# -- Python ---------------------------------------------------------------------------------------


def _python_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not any(relative.startswith(e) or relative == e for e in PYTHON_EXCLUDED):
            yield path


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literal_text(node: ast.AST) -> str | None:
    """The text of a literal sentence: a string (with letters), an f-string, ``"…" % x``,
    ``"…".format(x)`` or ``"…" + x``; None for anything else (a name, a translated text)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if LETTERS.search(node.value) else None
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        text = "".join(str(p) for p in parts)
        return text if LETTERS.search(text) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return _literal_text(node.left) or (
            _literal_text(node.right) if isinstance(node.op, ast.Add) else None
        )
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return _literal_text(node.func.value)
    return None


def _is_translated(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if name in TRANSLATE:
            return True
        if name == "str" and node.args:
            return _is_translated(node.args[0])
    return False


def _note_problem(node: ast.AST) -> str | None:
    """Why a note is not a translatable value: a sentence (literal or f-string) that is not a
    code, or the text of an exception."""
    if _is_translated(node):
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return None if CODE.match(node.value) else f"the sentence {node.value!r}"
    text = _literal_text(node)
    if text is not None:
        return f"the sentence {text!r}"
    if isinstance(node, ast.Call) and _name(node.func) == "str" and node.args:
        return "an exception's text (str(error))"
    return None


def python_findings(path: Path) -> list[Finding]:
    relative = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Finding] = []

    def add(node: ast.AST, what: str) -> None:
        found.append(Finding(f"{relative}:{getattr(node, 'lineno', '?')}", what))

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        args = list(node.args)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if name in TRANSLATE:
            continue
        if name == "translate" and args and (text := _literal_text(args[0])) is not None:
            # vaikuttavuus.texts.translate() looks the text up, but only N_() marks it for
            # extraction: a bare literal never reaches the catalogues
            add(node, f"translate() of {text!r} not marked with N_() (never extracted)")
        if name == "flash" and args and (text := _literal_text(args[0])) is not None:
            add(node, f"flash() of untranslated text {text!r}")
        elif name == "abort":
            description = args[1] if len(args) > 1 else keywords.get("description")
            if description is not None and (text := _literal_text(description)) is not None:
                add(node, f"abort() with untranslated text {text!r}")
        elif name == "render_template":
            for key, value in keywords.items():
                if key in TEMPLATE_TEXT_KEYWORDS and (text := _literal_text(value)) is not None:
                    add(node, f"render_template({key}=…) with untranslated text {text!r}")
        elif name and name.endswith(FIELD_SUFFIX) and name[:1].isupper():
            label = args[0] if args else keywords.get("label")
            if label is not None and (text := _literal_text(label)) is not None:
                add(node, f"form field label {text!r} is not translated")
        elif name in {"append", "insert", "extend"} and isinstance(node.func, ast.Attribute):
            target = _name(node.func.value)
            if target not in NOTE_LISTS:
                continue
            values: list[ast.AST] = args[-1:] if name != "extend" else []
            if name == "extend" and args and isinstance(args[0], ast.List | ast.Tuple):
                values = list(args[0].elts)
            for value in values:
                problem = _note_problem(value)
                if problem is not None:
                    add(node, f"{target}.{name}() of {problem}: give a code the page translates")
        # a validator's message (DataRequired(message=…), Regexp(…, message=…))
        if (
            "message" in keywords
            and name
            and name[:1].isupper()
            and (text := _literal_text(keywords["message"])) is not None
        ):
            add(node, f"validator message {text!r} is not translated")
    return found


# -- templates ------------------------------------------------------------------------------------

TAG = re.compile(r"<[^>]*>", re.DOTALL)
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
ENTITY = re.compile(r"&[#A-Za-z0-9]+;")
ATTRIBUTE = re.compile(r"""\b(alt|title|aria-label|placeholder|summary)\s*=\s*"([^"]*)\"""")
# Text that is the same in every language: proper nouns, codes, units.
ALLOWED_TEXT = frozenset(
    {
        "CSV", "PDF", "JSON", "XLSX", "FHIR", "QALY", "ICER", "INMB", "CEAC", "EVPI", "CHEERS",
        "IPW", "SMD", "IQR", "EQ-5D-5L", "IPSS", "UCLA", "TDABC", "vs", "mL", "ml", "min",
        "kg", "cm", "mm", "DRG",
    }
)  # fmt: skip


def _template_files() -> Iterator[Path]:
    for folder in TEMPLATE_DIRS:
        yield from sorted(folder.rglob("*.html"))


def _visible_words(text: str) -> list[str]:
    words = LETTERS.findall(ENTITY.sub(" ", text))
    return [w for w in words if w not in ALLOWED_TEXT]


def template_findings(path: Path, environment: Environment) -> list[Finding]:
    relative = path.relative_to(ROOT).as_posix()
    source = path.read_text(encoding="utf-8")
    found: list[Finding] = []
    # Only the template's own text (``data`` tokens) counts: what {{ }} and {% %} print is
    # checked where it comes from.
    data: list[tuple[int, str]] = []
    in_trans = False
    previous_block: list[str] = []
    for lineno, kind, value in environment.lex(source, filename=str(path)):
        if kind == "name" and previous_block == ["block_begin"]:
            in_trans = value == "trans" or (in_trans and value != "endtrans")
        previous_block = ["block_begin"] if kind == "block_begin" else []
        if kind == "data" and not in_trans:
            data.append((lineno, value))
    # Join the data with markers so tags split by an expression still parse as one tag.
    joined = "".join(f"\x00{lineno}\x00{value}" for lineno, value in data)
    line = 1
    for piece in re.split(r"(\x00\d+\x00)", joined):
        if piece.startswith("\x00"):
            line = int(piece.strip("\x00"))
            continue
        for match in ATTRIBUTE.finditer(piece):
            words = _visible_words(match.group(2))
            if words:
                found.append(
                    Finding(f"{relative}:{line}", f"{match.group(1)}=\"{match.group(2)}\"")
                )
    text = COMMENT.sub(" ", joined)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.DOTALL)
    text = TAG.sub(" ", text)
    # A tag opened before an expression and closed after it leaves its attributes behind.
    text = re.sub(r"<[^>\x00]*(?=\x00)", " ", text)
    text = re.sub(r"^[^<\x00]*?>", " ", text)
    line = 1
    for piece in re.split(r"(\x00\d+\x00)", text):
        if piece.startswith("\x00"):
            line = int(piece.strip("\x00"))
            continue
        visible = re.sub(r'[^<>]*"\s*>', " ", piece) if piece.lstrip().startswith('"') else piece
        words = _visible_words(visible)
        if words:
            found.append(Finding(f"{relative}:{line}", f"text {' '.join(words)!r}"))
    return found


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def environment() -> Environment:
    return Environment(extensions=["jinja2.ext.i18n"])


def all_findings(environment: Environment) -> list[Finding]:
    found: list[Finding] = []
    for path in _python_files():
        found.extend(python_findings(path))
    for path in _template_files():
        found.extend(template_findings(path, environment))
    return found


def test_every_user_visible_message_goes_through_the_catalogues(
    environment: Environment,
) -> None:
    found = all_findings(environment)
    known_found = {f.where.split(":")[0] for f in found if f.where.split(":")[0] in KNOWN}
    gone = KNOWN - known_found
    assert not gone, f"no longer found (remove from KNOWN): {sorted(gone)}"
    problems = [f for f in found if f.where.split(":")[0] not in KNOWN]
    assert not problems, "untranslated user-visible text:\n" + "\n".join(map(str, problems))


def test_the_scan_finds_what_it_is_for(tmp_path: Path, environment: Environment) -> None:
    """The scan can fail: a module and a template with each kind of fault are reported."""
    module = PACKAGE / "views" / "_scan_example.py"
    template = PACKAGE / "templates" / "_scan_example.html"
    module_text = '''
from flask import abort, flash, render_template
from flask_babel import gettext as _
from wtforms import StringField
from wtforms.validators import DataRequired

def view(error, name):
    notes = []
    translate("Not extracted")
    translate(N_("Extracted"))
    flash("Saved.")
    flash(f"Saved {name}.")
    flash(_("Saved."))
    abort(400, "Bad input")
    render_template("error.html", title="Not found")
    field = StringField("Username", validators=[DataRequired(message="Required")])
    notes.append("an arm has too few persons")
    notes.append(f"{name} person(s) left out")
    notes.append(str(error))
    notes.append("too_few_persons")
    notes.append(_("Translated."))
'''
    template_text = (
        '<h1>{{ _("Title") }}</h1>\n<p>Plain English text</p>\n'
        '<img src="x" alt="A chart">\n<p>{{ value }} · 12 %</p>\n'
        '<a href="{{ url }}" title="{{ _(\'ok\') }}">{{ _("Link") }}</a>\n'
    )
    try:
        module.write_text(module_text, encoding="utf-8")
        template.write_text(template_text, encoding="utf-8")
        python = [f.what for f in python_findings(module)]
        html = [f.what for f in template_findings(template, environment)]
    finally:
        module.unlink(missing_ok=True)
        template.unlink(missing_ok=True)
    expected_python = [
        "flash() of untranslated text 'Saved.'",
        "flash() of untranslated text 'Saved .'",
        "abort() with untranslated text 'Bad input'",
        "render_template(title=…) with untranslated text 'Not found'",
        "form field label 'Username' is not translated",
        "validator message 'Required' is not translated",
        "notes.append() of the sentence 'an arm has too few persons'",
        "notes.append() of the sentence ' person(s) left out'",
        "notes.append() of an exception's text (str(error))",
        "translate() of 'Not extracted' not marked with N_() (never extracted)",
    ]
    for expected in expected_python:
        assert any(found.startswith(expected) for found in python), (expected, python)
    assert not any("too_few_persons" in f or "Translated" in f for f in python)
    assert len(python) == len(expected_python), python
    assert any("Plain English text" in f for f in html), html
    assert any('alt="A chart"' in f for f in html), html
    assert len(html) == 2, html


def test_no_guessed_translation_is_shown() -> None:
    """``scripts/test`` and ``scripts/demo`` compile the catalogues with ``-f``: a fuzzy entry
    (Babel's guess from a similar message) would be shown. English is the source language, so
    its catalogue must have none; Finnish and Swedish are checked by
    test_translations_complete.py."""
    from babel.messages.pofile import read_po

    path = PACKAGE / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="en")
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy English entries (clear them): {fuzzy}"


def test_every_note_code_has_a_text() -> None:
    """Every ``Note("code", …)`` the source writes has its sentence in ``NOTE_TEXTS``, so no
    page falls back to the English sentence."""
    from vaikuttavuus.services.note_texts import NOTE_TEXTS

    codes: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "notes.py" and path.parent.name == "domain":  # the class itself
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) == "Note" and node.args):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                codes[first.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
            elif isinstance(first, ast.IfExp):
                for branch in (first.body, first.orelse):
                    if isinstance(branch, ast.Constant) and isinstance(branch.value, str):
                        codes[branch.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
            else:
                codes[ast.dump(first)] = f"{path.relative_to(ROOT)}:{node.lineno} (not a literal)"
    assert len(codes) >= 10
    missing = {code: where for code, where in codes.items() if code not in NOTE_TEXTS}
    assert not missing, f"note codes without a text in services/note_texts.py: {missing}"
