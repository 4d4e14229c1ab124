"""PDF rendering: ``reports/`` templates → HTML → WeasyPrint, with a restricted URL fetcher.

Templates receive plain values (numbers, strings, chart data URIs), never ORM objects or
anything that could fetch: the fetcher serves ``data:`` URIs and files inside ``reports/``
only, so a template or a value in it cannot make the server read other files or the network.

Every PDF is **tagged** for assistive technology (WeasyPrint's PDF/UA-1 variant, :data:`
PDF_VARIANT`): the structure tree follows the HTML (headings, paragraphs, lists, tables with
their header cells, figures with the image's ``alt`` text as alternative text) in reading
order, with the document's language (``<html lang>``) and title (``<title>``, shown as the
window title). Templates must therefore give every ``<img>`` an ``alt`` (the numbers a chart
shows), ``<th scope>`` for header cells, and a heading order without gaps
(``tests/web/test_pdf_accessibility.py`` reads the structure of each PDF).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, render_template
from flask_babel import force_locale
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

from vaikuttavuus import paths

PDF_VARIANT = "pdf/ua-1"
"""Tagged PDF with the PDF/UA-1 metadata (WeasyPrint ≥ 57; the tag tree itself is what
assistive technology reads; full PDF/UA conformance is not claimed)."""


class FetchRefusedError(ValueError):
    """A report tried to load something other than a data URI or a file in ``reports/``."""


def init_app(app: Flask) -> None:
    """Make ``reports/<name>`` templates available to ``render_template``."""
    loader = PrefixLoader({"reports": FileSystemLoader(str(paths.reports_dir()))})
    app.jinja_loader = ChoiceLoader([app.jinja_loader, loader])  # type: ignore[list-item]


def _restricted_fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves data URIs and files inside ``reports/`` only.

    Anything else stops the rendering (``fail_on_errors``), so a refused fetch can never be
    silently skipped.
    """
    from weasyprint.urls import URLFetcher

    class RestrictedFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            parts = urlsplit(url)
            if parts.scheme == "file":
                root = paths.reports_dir().resolve()
                target = Path(unquote(parts.path)).resolve()
                if not (target.is_relative_to(root) and target.is_file()):
                    raise FetchRefusedError(f"outside reports/: {url}")
            elif parts.scheme != "data":
                raise FetchRefusedError(f"only data URIs and reports/ files: {url[:80]}")
            return super().fetch(url, headers)

    return RestrictedFetcher(allowed_protocols={"data", "file"}, fail_on_errors=True)


def render_pdf(template: str, language: str, **context: Any) -> bytes:
    """Render ``reports/<template>`` in ``language`` to PDF bytes."""
    from weasyprint import HTML

    with force_locale(language):
        html = render_template(f"reports/{template}", language=language, **context)
    document = HTML(
        string=html,
        base_url=paths.reports_dir().resolve().as_uri() + "/",
        url_fetcher=_restricted_fetcher(),
    )
    return document.write_pdf(pdf_variant=PDF_VARIANT)
