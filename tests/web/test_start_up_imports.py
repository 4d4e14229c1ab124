"""The app and the patient's pages start without the statistics, plotting and PDF libraries:
a gunicorn worker boots fast and a patient's questionnaire never waits for scipy. The staff
pages that compute or draw import them when first used.

Each check runs in a fresh interpreter (a subprocess) against the test's database, and looks
at ``sys.modules`` after the requests."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests import conftest

HEAVY = ("scipy", "statsmodels", "matplotlib", "weasyprint", "fhir", "patsy")

PROBE = """
import json, sys
from vaikuttavuus import create_app
config, paths, names = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
app = create_app(config)
client = app.test_client()
statuses = [client.get(path).status_code for path in paths]
print(json.dumps({"statuses": statuses, "loaded": sorted(n for n in names if n in sys.modules)}))
"""


def probe(database_url: str, paths: list[str], names: tuple[str, ...] = HEAVY) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps(conftest.test_config(database_url)),
            json.dumps(paths),
            json.dumps(names),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.one_backend
def test_app_and_patient_pages_import_no_heavy_library(
    app: Any, database_url: str, enrol_patient: Any, patient_link: Any
) -> None:
    token = patient_link(enrol_patient("bph"), "baseline")
    outcome = probe(database_url, ["/healthz", f"/r/{token}", f"/r/{token}/1"])
    assert outcome["statuses"] == [200, 200, 200]
    assert outcome["loaded"] == []


@pytest.mark.one_backend
def test_the_probe_sees_a_library_the_app_loads(app: Any, database_url: str) -> None:
    """The check can fail: drawing a chart in the same interpreter shows up as matplotlib."""
    outcome = probe(database_url, ["/auth/login"], ("matplotlib",))
    assert outcome["loaded"] == []
    drawn = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, vaikuttavuus.plotting as p; p.new_figure(); "
            "print('matplotlib' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert drawn.stdout.strip() == "True"
