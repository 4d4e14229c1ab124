"""Every form of the app, found by crawling it as every role and as a patient.

* Posted without its anti-forgery token (Flask-WTF ``csrf_token`` on staff forms, the
  link-bound ``form_token`` on patient forms) every form answers 400 and nothing changes.
* Filled with malformed values (hypothesis: odd unicode, NUL characters, huge inputs, numbers
  out of any range, several values where one is expected, files where text is expected, and
  fields the form does not have — the only malformation a form without fields can get) no
  form answers 5xx; a refusal carries a message and stores nothing.
* Every page found carries the security headers and no inline script.

Routes come from the URL map and links from the pages, so forms added later are covered.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.crawl import (
    HtmlForm,
    changed_tables,
    crawl,
    endpoint_of,
    is_html,
    route_url,
    sample_urls,
    security_header_problems,
    snapshot,
    volatile_column,
)
from tests.support.isolation import fresh_globals_per_request
from tests.support.world import (
    ROLES,
    World,
    all_answers,
    build_world,
    response_items,
    submitted_responses,
)
from vaikuttavuus.domain.answers import AnswerError, canonical
from vaikuttavuus.extensions import db
from vaikuttavuus.security.access import PUBLIC, declared_access
from vaikuttavuus.security.tokens import form_token, token_hash

FUZZ_EXAMPLES = int(os.environ.get("VAIKUTTAVUUS_FUZZ_EXAMPLES", "6"))
ERROR_MARKERS = ('class="error', "error-summary", "flash-error", "has-error")


@dataclass
class FoundForm:
    role: str | None
    client: FlaskClient
    form: HtmlForm
    endpoint: str

    @property
    def label(self) -> str:
        return f"{self.role or 'anonymous'} {self.form.method.upper()} {self.endpoint}"


@pytest.fixture(autouse=True)
def _fresh_request_globals(app: Flask) -> None:
    fresh_globals_per_request(app)


@pytest.fixture
def world(app: Flask, make_user: Any, enrol_patient: Any, patient_link: Any) -> World:
    return build_world(app, make_user, enrol_patient, patient_link)


def _endpoint(app: Flask, form: HtmlForm) -> str:
    return endpoint_of(app, form.target(), form.method.upper())


def _signature(found: FoundForm) -> tuple[Any, ...]:
    """One form per route, method and kind of fields: one questionnaire page stands for all."""
    kinds = sorted({f.kind for f in found.form.user_fields})
    return (found.endpoint, found.form.method, tuple(kinds), found.form.token_field)


def _is_patient(path: str) -> bool:
    return path.startswith("/r/")


Pages = list[tuple[str | None, str, Any]]


def _anonymous_skip(path: str) -> bool:
    return not _is_patient(path) and path != "/auth/login"


def discover(world: World, pages: Pages | None = None) -> list[FoundForm]:
    """Crawl as every role (and anonymously, with the patient links) and collect the forms."""
    found: dict[tuple[Any, ...], FoundForm] = {}
    starts = sample_urls(world.app, world.values)
    for role in (None, *ROLES):
        client = world.client(role)
        role_starts = [*world.patient_paths(), "/auth/login"] if role is None else starts
        skip = _anonymous_skip if role is None else _is_patient
        for url, response, parsed in crawl(client, role_starts, skip=skip):
            if pages is not None:
                pages.append((role, url, response))
            if parsed is None:
                continue
            for form in parsed.forms:
                item = FoundForm(role, client, form, _endpoint(world.app, form))
                found.setdefault(_signature(item), item)
    return list(found.values())


def _post(found: FoundForm, data: dict[str, Any]) -> Any:
    target = found.form.target()
    if found.form.method == "get":
        return found.client.get(target, query_string=data)
    return found.client.post(target, data=data)


# -- CSRF ----------------------------------------------------------------------------------------


def test_every_post_form_refuses_a_missing_or_foreign_token(world: World) -> None:
    forms = [f for f in discover(world) if f.form.method == "post"]
    endpoints = {f.endpoint for f in forms}
    # The crawl reached the kinds of form the app has today (more may come).
    assert {
        "auth.login",
        "auth.logout",
        "auth.change_password",
        "admin.users",
        "admin.toggle_active",
        "patient.step",
        "patient.submit",
        "patient.opt_out",
        "assisted.step",
        "assisted.submit",
        "invitations.letters",
        "measurements.patient",
        "measurements.correct",
        "privacy.withdraw",
    } <= endpoints, endpoints
    problems = []
    other_tokens = _foreign_tokens(world)
    for found in forms:
        field = found.form.token_field
        if field is None:
            problems.append(f"{found.label}: form without an anti-forgery token")
            continue
        values = found.form.values()
        for label, token in (("missing", None), ("foreign", other_tokens[field])):
            data = {k: v for k, v in values.items() if k != field}
            if token is not None:
                data[field] = token
            before = snapshot(db.session, skip_tables=frozenset())
            response = _post(found, data)
            after = snapshot(db.session, skip_tables=frozenset())
            if response.status_code != 400:
                problems.append(f"{found.label} with {label} token: {response.status_code}")
            if changed_tables(before, after):
                problems.append(
                    f"{found.label} with {label} token changed {changed_tables(before, after)}"
                )
    assert problems == []


def _foreign_tokens(world: World) -> dict[str, str]:
    """Tokens that are valid somewhere else: another session's, another link's."""
    stranger = world.app.test_client()
    page = stranger.get("/auth/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf
    # A correctly signed form token, but for another (unknown) link.
    return {"csrf_token": csrf.group(1), "form_token": form_token(token_hash("another-link"))}


def test_patient_forms_are_bound_to_their_link(world: World) -> None:
    """A link's form token does not work for another link (nor the staff token for either)."""
    client = world.client(None)
    mine = world.tokens["bph_baseline"]
    theirs = world.tokens["bph_m3"]
    page = client.get(f"/r/{theirs}/1").get_data(as_text=True)
    their_token = re.search(r'name="form_token"[^>]*value="([^"]+)"', page)
    own_page = client.get(f"/r/{mine}/1").get_data(as_text=True)
    own_token = re.search(r'name="form_token"[^>]*value="([^"]+)"', own_page)
    assert their_token and own_token and their_token.group(1) != own_token.group(1)
    refused = client.post(f"/r/{mine}/1", data={"form_token": their_token.group(1), "ipss1": "1"})
    assert refused.status_code == 400
    accepted = client.post(
        f"/r/{mine}/1", data={"form_token": own_token.group(1), "direction": "back"}
    )
    assert accepted.status_code == 302  # the same post with the right token goes through


# -- malformed values ----------------------------------------------------------------------------


def _text_values() -> st.SearchStrategy[Any]:
    numbers = st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.sampled_from(["1e308", "-0", "0x1F", "1_000", "٣", "½", "1,5,5", "--1", "NaN"]),
    )
    dates = st.one_of(
        st.dates().map(str),
        st.sampled_from(["31.02.2024", "2024-13-45", "0000-00-00", "29.2.2023", "9999-99-99"]),
    )
    odd = st.sampled_from(
        [
            "<script>alert(1)</script>",
            "' OR '1'='1",
            '=HYPERLINK("http://x")',
            "../../etc/passwd",
            "\u202e\u200b\ufeff",
            "\U0001f600" * 50,
            "a\x00b",
            "\x00",
            " ",
            "\r\n\t",
        ]
    )
    huge = st.integers(3_000, 120_000).map(lambda n: "Ä" * n)
    return st.one_of(
        st.text(max_size=300),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=50).map(lambda s: s + "\x00"),
        numbers,
        dates,
        odd,
        huge,
    )


# Names no form uses, for fields a form does not expect.
UNEXPECTED_FIELDS = ("unexpected", "id", "x" * 300, "\u202e\x00", "pilot_code")


@st.composite
def _malformed(draw: st.DrawFn, form: HtmlForm) -> dict[str, Any]:
    data = form.values()
    extra = draw(st.lists(st.sampled_from(UNEXPECTED_FIELDS), max_size=2, unique=True))
    if not form.user_fields and not extra:
        extra = [UNEXPECTED_FIELDS[0]]  # a form without fields gets at least one it lacks
    for name in extra:
        data[name] = draw(st.one_of(_text_values(), st.lists(_text_values(), max_size=3)))
    for field in form.user_fields:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            data.pop(field.name, None)  # missing
        elif choice == 1:
            data[field.name] = draw(st.lists(_text_values(), min_size=2, max_size=4))
        elif choice == 2 and form.method == "post":
            data[field.name] = (io.BytesIO(draw(st.binary(max_size=200))), "upload.csv")
        elif choice == 3 and field.options:
            data[field.name] = draw(st.sampled_from(field.options))
        else:
            data[field.name] = draw(_text_values())
    return data


def _has_message(response: Any) -> bool:
    html = response.get_data(as_text=True)
    if response.status_code >= 400:
        return "<h1" in html
    return any(marker in html for marker in ERROR_MARKERS)


def _changed_answers_are_valid(before: dict[tuple[int, str], str]) -> list[str]:
    """Answer pages keep every valid answer even when another on the page is refused: each
    answer that changed must be a valid stored value (its own canonical form)."""
    problems = []
    after = all_answers()
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    items = response_items({response_id for response_id, _ in changed})
    for (response_id, item_id), value in changed.items():
        spec, by_id = items[response_id]
        try:
            again = canonical(spec, by_id[item_id], value)
        except AnswerError as error:
            problems.append(f"{item_id}: stored {value[:40]!r}, not valid ({error.code})")
            continue
        if again is None or again.value != value:
            problems.append(f"{item_id}: stored {value[:40]!r} is not in canonical form")
    return problems


# Answer pages (patient and assisted entry) store each valid answer of a page at once, so the
# answers are checked one by one rather than as "nothing changed".
ANSWER_TABLES = frozenset({"audit_events", "answers", "responses"})
# A refused login is a counted failure (the shared throttle): bookkeeping, like the audit log.
SKIPPED_TABLES = ANSWER_TABLES | {"throttle_counters"}


def _fuzz(found: FoundForm) -> list[str]:
    problems: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(data=_malformed(found.form))
    def run(data: dict[str, Any]) -> None:
        before = snapshot(db.session, skip_tables=SKIPPED_TABLES, skip_column=volatile_column)
        answers_before = all_answers()
        submitted_before = submitted_responses()
        response = _post(found, data)
        status = response.status_code
        if status >= 500:
            problems.append(f"{found.label}: {status} for {_short(data)}")
            return
        # A 200 to a post is a page shown again (a refusal), unless it is a download.
        shown_again = found.form.method == "post" and status == 200 and is_html(response)
        refused = status >= 400 or shown_again
        if refused and not _has_message(response):
            problems.append(f"{found.label}: {status} without a message for {_short(data)}")
        if refused:
            after = snapshot(db.session, skip_tables=SKIPPED_TABLES, skip_column=volatile_column)
            changed = changed_tables(before, after)
            if submitted_responses() != submitted_before:
                changed.append("responses (submitted)")
            if changed:
                problems.append(
                    f"{found.label}: refused ({status}) but changed {changed} for {_short(data)}"
                )
        invalid = _changed_answers_are_valid(answers_before)
        problems.extend(f"{found.label}: {p}" for p in invalid)

    run()
    return problems


def _short(data: dict[str, Any]) -> str:
    return repr({k: (v if not isinstance(v, str) else v[:30]) for k, v in data.items()})[:300]


# Forms whose first success ends what the other forms need (the link, the invitation, a
# user): fuzzed last, so that every other form is fuzzed in the state the crawl found it.
FUZZED_LAST = ("patient.opt_out", "invitations.cancel", "admin.toggle_active")


def test_malformed_values_on_every_form(world: World) -> None:
    world.app.config["PROPAGATE_TEST_ERRORS"] = False  # collect every 500, do not stop
    forms = [
        f
        for f in discover(world)
        if (f.form.user_fields or f.form.method == "post") and f.endpoint != "auth.logout"
    ]
    forms.sort(key=lambda f: FUZZED_LAST.index(f.endpoint) + 1 if f.endpoint in FUZZED_LAST else 0)
    assert {
        "auth.login",
        "admin.users",
        "patient.step",
        "patient.submit",
        "admin.audit_log",
        "assisted.step",
        "assisted.submit",
        "invitations.letters",
        "measurements.patient",
        "measurements.correct",
    } <= {f.endpoint for f in forms}
    problems: list[str] = []
    for found in forms:
        problems.extend(_fuzz(found))
    assert problems == [], "\n".join(problems[:40])


def test_route_parameters_out_of_range(world: World) -> None:
    """Huge numbers, NUL characters and odd text in URL parameters and query strings, sent by
    a role the route admits."""
    world.app.config["PROPAGATE_TEST_ERRORS"] = False  # collect every 500, do not stop
    world.app.config["PATIENT_LINK_MISS_LIMIT"] = "10000 per minute"
    problems = []
    odd_values = ["9" * 40, "-1", "%00", "\u202e", "a" * 5000, "1e99"]
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint == "static" or "GET" not in (rule.methods or set()):
            continue
        access = declared_access(world.app, rule.endpoint)
        role = None if access == PUBLIC or not access else sorted(access)[0]
        client = world.client(role)
        # The query string is fuzzed on a path that exists (a real pilot, pseudonym, link…),
        # so that the view reads it: on an odd path the route answers 404 first.
        # A PDF takes seconds to render: its query string is fuzzed with the first value only.
        valid_path = route_url(rule, world.values)
        for position, odd in enumerate(odd_values):
            odd_path = rule.rule
            for name in rule.arguments:
                odd_path = re.sub(rf"<(?:[^:>]+:)?{name}>", odd, odd_path)
            query = dict.fromkeys(QUERY_PARAMETERS, odd)
            paths = [odd_path]
            if position == 0 or not valid_path.endswith(".pdf"):
                paths.append(valid_path)
            for path in dict.fromkeys(paths):
                response = client.get(path, query_string=query)
                if response.status_code >= 500:
                    problems.append(f"{role} GET {path[:80]} ?…={odd[:20]}: 500")
    assert problems == []


QUERY_PARAMETERS = (
    "page",
    "q",
    "person",
    "from",
    "to",
    "sort",
    "arm",
    "unit",
    "status",
    "time_point",
    "tp",
    "score",
    "effect",
    "section",
    "pilot",
    "actor",
    "action",
    "by",
    "delivery",
)
"""Query parameters the views read (besides the language and text-size switches)."""


def test_every_crawled_page_has_security_headers(world: World) -> None:
    pages: Pages = []
    discover(world, pages)
    assert len(pages) > 20
    problems = [
        problem
        for role, url, response in pages
        for problem in security_header_problems(f"{role} {url}", response)
    ]
    server_errors = [f"{role} {url}" for role, url, r in pages if r.status_code >= 500]
    assert server_errors == []
    assert problems == []
