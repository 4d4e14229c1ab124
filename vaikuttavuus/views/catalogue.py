"""The costing catalogue, read-only, for pilot leads and administrators: products with their
unit costs per price year, the price index and the time-driven activity-based costing (TDABC)
derivation. No personal data is shown."""

from __future__ import annotations

from flask import Blueprint, render_template

from vaikuttavuus.definitions import DefinitionError
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import Role
from vaikuttavuus.paths import costing_dir
from vaikuttavuus.security.access import allow
from vaikuttavuus.services.costing_overview import catalogue_overview, load_catalogue

bp = Blueprint("catalogue", __name__, url_prefix="/catalogue")


@bp.get("/")
@allow(Role.PILOT_LEAD, Role.ADMIN)
def index() -> str:
    try:
        catalogue = load_catalogue()
    except DefinitionError as error:
        return render_template("catalogue/index.html", overview=None, problems=error.problems)
    overview = catalogue_overview(catalogue, current_language())
    return render_template(
        "catalogue/index.html",
        overview=overview,
        products=overview.products.to_dict(orient="records"),
        price_index=overview.price_index.to_dict(orient="records"),
        tdabc=overview.tdabc,
        folder=costing_dir().name,
        problems=[],
    )
