"""How much resampling the reports do: the bootstrap replicates and the number of imputed data
sets of the analyses that pages, CSVs and PDFs compute (``REPORT_BOOTSTRAP`` and
``REPORT_IMPUTATIONS`` in the configuration; :func:`vaikuttavuus.create_app` sets them). The
command line passes its own values. Kept free of heavy imports so that creating the app does
not load the analytics."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BOOTSTRAP = 5_000
"""Bootstrap replicates of the reports (the same as ``domain.cea.DEFAULT_BOOTSTRAP``)."""


@dataclass(frozen=True)
class ReportSettings:
    n_boot: int = DEFAULT_BOOTSTRAP
    imputations: int | None = None
    """Imputed data sets; None: the number each pilot declares."""
    timezone: str = "Europe/Helsinki"
    """The local time zone of the release dates of the management figures."""


_settings: list[ReportSettings] = [ReportSettings()]


def configure(
    n_boot: int | None = None, imputations: int | None = None, timezone: str | None = None
) -> None:
    """Set the defaults of the analyses the app computes (from the app configuration)."""
    _settings[0] = ReportSettings(
        n_boot or DEFAULT_BOOTSTRAP, imputations, timezone or "Europe/Helsinki"
    )


def current() -> ReportSettings:
    return _settings[0]
