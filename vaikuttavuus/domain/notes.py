"""Notes about a result (a person left out, a model that did not converge) as codes with values.

Pure code cannot speak the user's language, and a sentence built here would reach the Finnish
and Swedish pages in English (issue 17). A :class:`Note` is a ``str`` – its English sentence,
which logs, the command line, CSV and JSON keep showing – that also carries a ``code`` and the
``values`` it was written from (a count, a score id, a time-point id, a category). The pages
translate it from those (:mod:`vaikuttavuus.services.note_texts`), naming the codes as the
pilot definition names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Note(str):
    """An English note that knows its ``code`` and ``values`` (a ``str`` for everything else)."""

    code: str
    values: Mapping[str, Any]

    def __new__(cls, code: str, english: str, **values: Any) -> Note:
        note = super().__new__(cls, english)
        note.code = code
        note.values = dict(values)
        return note

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.code, str(self), dict(self.values)))

    def __repr__(self) -> str:
        return f"Note({self.code!r}, {str(self)!r}, **{dict(self.values)!r})"


def _rebuild(code: str, english: str, values: dict[str, Any]) -> Note:
    return Note(code, english, **values)


def warning_notes(context: str, caught: list[Any]) -> list[Note]:
    """Warnings caught while fitting a model (``warnings.catch_warnings(record=True)``)."""
    notes = []
    for item in caught:
        detail = f"{type(item.message).__name__}: {item.message}"
        notes.append(Note("model_warning", f"{context}: {detail}", detail=detail))
    return notes


def costs_unavailable(detail: str) -> Note:
    """The episode costs could not be computed (a costing catalogue problem: ``detail``)."""
    return Note("costs_unavailable", detail, detail=detail)
