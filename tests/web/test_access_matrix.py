"""Every route declares who may use it, and the declaration holds for every role.

The test walks the URL map: a route without a declaration fails the suite; for each declared
route it requests the page anonymously and as every role and checks that anonymous users are
sent to the login page, roles outside the declaration get 403, and roles inside it are let in.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.conftest import login
from vaikuttavuus.security.access import PUBLIC, declared_access

ROLES = ("clinician", "pilot_lead", "management", "admin")


def _rules(app: Flask) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]


def test_every_route_declares_its_access(app: Flask) -> None:
    undeclared = [rule.rule for rule in _rules(app) if declared_access(app, rule.endpoint) is None]
    assert undeclared == [], f"routes without @allow/@public: {undeclared}"


EXPECTED_ACCESS: dict[str, frozenset[str] | str] = {
    # the read-only costing catalogue: no personal data, for pilot leads and administrators
    "catalogue.index": frozenset({"pilot_lead", "admin"}),
}
"""Routes whose audience is pinned here, so that a changed declaration fails a test."""


def test_pinned_routes_keep_their_audience(app: Flask) -> None:
    for endpoint, expected in EXPECTED_ACCESS.items():
        assert declared_access(app, endpoint) == expected, endpoint


def _url(rule: Rule, values: dict[str, Any]) -> str:
    arguments = {name: values.get(name, "1") for name in rule.arguments}
    for name, converter in rule._converters.items():  # werkzeug has no public API for this
        if type(converter).__name__ == "IntegerConverter":
            arguments[name] = values.get(name, 1) if isinstance(values.get(name), int) else 1
    path = rule.build(arguments, append_unknown=False)
    assert path is not None
    return path[1]


@pytest.fixture
def sample_values(app: Flask, enrol_patient: Any) -> dict[str, Any]:
    enrolment = enrol_patient()
    return {
        "pilot_code": "bph",
        "pseudonym": enrolment.person.pseudonym,
        "token": "x" * 32,
        "number": 1,
    }


@pytest.mark.parametrize("role", [None, *ROLES])
def test_roles_get_exactly_what_routes_declare(
    app: Flask, client: FlaskClient, make_user: Any, sample_values: dict[str, Any], role: str | None
) -> None:
    if role is not None:
        make_user(f"user_{role}", role)
        assert login(client, f"user_{role}").status_code == 302
    problems = []
    for rule in _rules(app):
        access = declared_access(app, rule.endpoint)
        method = "GET" if "GET" in (rule.methods or set()) else "POST"
        url = _url(rule, sample_values)
        response = client.open(url, method=method)
        status = response.status_code
        if status >= 500:
            problems.append(f"{method} {url}: {status}")
        elif access == PUBLIC:
            continue
        elif role is None:
            if not (status == 302 and "/auth/login" in response.headers.get("Location", "")):
                problems.append(f"{method} {url} anonymous: {status}, expected login redirect")
        elif role in access:  # type: ignore[operator]
            if status in (401, 403):
                problems.append(f"{method} {url} as {role}: {status}, expected access")
        elif status != 403:
            problems.append(f"{method} {url} as {role}: {status}, expected 403")
    assert problems == []


def test_users_only_see_their_own_pilots(
    client: FlaskClient, make_user: Any, enrol_patient: Any
) -> None:
    enrolment = enrol_patient(pilot="older-adults", arm="outreach")
    make_user("bph_only", "clinician", pilots=("bph",))
    assert login(client, "bph_only").status_code == 302
    assert client.get("/clinician/bph/").status_code == 200
    assert client.get("/clinician/older-adults/").status_code == 403
    pseudonym = enrolment.person.pseudonym
    assert client.get(f"/clinician/older-adults/{pseudonym}").status_code == 403
