"""The accessibility structure of a PDF the tool makes (tagged PDF, PDF/UA-style): read with
``pdfinfo`` and pypdf, checked by :func:`assert_accessible`.

What every PDF must have (vaikuttavuus/pdf.py): ``Tagged: yes``; the document language and a
title shown as the window title; a structure tree in reading order (the elements' pages never
go back) with headings that start at H1 and never skip a level; tables whose header cells are
TH and whose data cells name their headers; every figure with alternative text (for a chart,
the numbers it shows).
"""

from __future__ import annotations

import io
import itertools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Element:
    kind: str
    page: int | None
    alt: str | None
    attributes: dict[str, Any]
    children: list[Element] = field(default_factory=list)


@dataclass
class Structure:
    tagged: bool
    language: str | None
    title: str | None
    shows_title: bool
    elements: list[Element]
    """Every structure element in document (reading) order, depth first."""

    def of(self, kind: str) -> list[Element]:
        return [e for e in self.elements if e.kind == kind]

    @property
    def headings(self) -> list[int]:
        return [int(e.kind[1]) for e in self.elements if re.fullmatch(r"H[1-6]", e.kind)]


def read_structure(data: bytes) -> Structure:
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    reader = PdfReader(io.BytesIO(data))
    root = reader.trailer["/Root"]
    pages = {page.indirect_reference.idnum: i for i, page in enumerate(reader.pages)}  # type: ignore[union-attr]
    elements: list[Element] = []

    def walk(node: Any) -> Element | None:
        if isinstance(node, IndirectObject):
            node = node.get_object()
        if not isinstance(node, DictionaryObject) or "/S" not in node:
            return None
        page_ref = node.get("/Pg")
        page = pages.get(page_ref.idnum) if isinstance(page_ref, IndirectObject) else None
        attributes = node.get("/A")
        element = Element(
            str(node["/S"]).lstrip("/"),
            page,
            str(node["/Alt"]) if "/Alt" in node else None,
            dict(attributes.get_object()) if attributes is not None else {},
        )
        elements.append(element)
        kids = node.get("/K")
        if kids is None:
            return element
        kids = kids.get_object() if isinstance(kids, IndirectObject) else kids
        for kid in kids if isinstance(kids, ArrayObject) else [kids]:
            child = walk(kid)
            if child is not None:
                element.children.append(child)
        return element

    tree = root.get("/StructTreeRoot")
    if tree is not None:
        for kid in tree.get_object().get("/K", []):
            walk(kid)
    marked = root.get("/MarkInfo")
    preferences = root.get("/ViewerPreferences")
    return Structure(
        tagged=bool(marked and marked.get_object().get("/Marked")),
        language=str(root["/Lang"]) if "/Lang" in root else None,
        title=reader.metadata.title if reader.metadata else None,
        shows_title=bool(preferences and preferences.get_object().get("/DisplayDocTitle")),
        elements=elements,
    )


def pdfinfo_tagged(data: bytes) -> bool | None:
    """``pdfinfo``'s ``Tagged:`` line (None when poppler-utils is not installed)."""
    if shutil.which("pdfinfo") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(data)
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    found = re.search(r"^Tagged:\s+(\w+)", info.stdout, flags=re.M)
    return found is not None and found.group(1) == "yes"


def assert_accessible(
    data: bytes,
    language: str,
    *,
    tables: int = 0,
    figures: int = 0,
    charts_with_numbers: bool = True,
) -> Structure:
    """Check the structure every PDF must have; ``tables`` and ``figures`` are the least
    numbers of each the document must hold."""
    structure = read_structure(data)
    assert pdfinfo_tagged(data) in (True, None), "pdfinfo does not say Tagged: yes"
    assert structure.tagged, "the PDF is not marked as tagged"
    assert structure.language == language, structure.language
    assert structure.title and structure.title.strip(), "no document title"
    assert structure.shows_title, "the viewer is not told to show the title"
    pages = [e.page for e in structure.elements if e.page is not None]
    assert pages == sorted(pages), "the structure tree does not follow the pages"
    levels = structure.headings
    assert levels and levels[0] == 1, f"the first heading is not H1: {levels[:5]}"
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, f"a heading level is skipped: H{before} → H{after}"
    found_tables = structure.of("Table")
    assert len(found_tables) >= tables, (len(found_tables), tables)
    for table in found_tables:
        cells = _descendants(table)
        headers = [c for c in cells if c.kind == "TH"]
        data_cells = [c for c in cells if c.kind == "TD"]
        # (a table broken over pages is one element per page; a caption alone has no cells)
        assert headers or not data_cells, "a table without header cells"
        for cell in data_cells:
            assert cell.attributes.get("/Headers"), "a data cell that names no header"
    found_figures = structure.of("Figure")
    assert len(found_figures) >= figures, (len(found_figures), figures)
    for figure in found_figures:
        assert figure.alt and figure.alt.strip(), "a figure without alternative text"
        if charts_with_numbers:
            assert re.search(r"\d", figure.alt), f"a chart's text has no numbers: {figure.alt}"
    return structure


def _descendants(element: Element) -> list[Element]:
    found = []
    for child in element.children:
        found.append(child)
        found.extend(_descendants(child))
    return found
