"""The patient pages under load: ``page_get`` and ``submit_post``, against the bare Flask
baseline served the same way in the same run.

Per backend, on a copy of the largest data set:

1. Patients are enrolled in the BPH pilot through the services (as the enrolment form does),
   with a personal link each (:func:`~vaikuttavuus.services.patient_flow.issue_token`); their
   responses are opened, and the links meant for submitting get every page answered and saved
   (:func:`~vaikuttavuus.services.patient_flow.save_section`), so that a submit is the real,
   complete one. Each submit uses its own link, so every one of them writes.
2. ``vaikuttavuus serve`` (gunicorn, ``workers`` × ``threads``) and the bare Flask app of
   :mod:`bench.hello` (the same gunicorn options) are started on loopback.
3. ``page_get``: the first questionnaire page of the links (``GET /r/<token>/1``, a 200 with
   the form) against ``GET /hello``, each for at most ``get_requests`` requests or
   ``max_seconds``, with ``concurrency`` keep-alive connections; after a warm-up of each (at
   most ``max_seconds``, every link visited at least once where time allows).
4. ``submit_post``: ``POST /r/<token>/submit`` with the link's anti-forgery value — success
   is the redirect to the thank-you page — against ``POST /hello`` (a form read and a
   redirect). The values are computed while preparing (the server derives them from the link
   and the instance's key) and checked against the review pages of a sample of links, read over
   HTTP as a browser gets them. Afterwards the database must hold exactly as many completed
   invitations as submits were acknowledged (``verified``).

Rounds alternate baseline and app; figures are medians over rounds. The instance keeps the
production rate limits: the patient-link limit counts only unknown links (404), so valid
links are never throttled; ``throttled_429`` reports any refusal.
"""

from __future__ import annotations

import re
import statistics
import threading
from datetime import date, timedelta
from typing import Any

from bench.load import Answer, LoadResult, Request, run_load, status_is
from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.servers import ServerProcess, app_server, hello_server
from bench.tasks import task

FORM_TOKEN = re.compile(r'name="form_token"[^>]*value="([^"]+)"')
COMMIT_EVERY = 200
FORM_TOKEN_SAMPLE = 20
INDEX_OFFSET_DAYS = 10  # the baseline questionnaire is open ten days before the procedure


# -- child tasks -----------------------------------------------------------------------------


@task("prepare_links")
def prepare_links_task(get_links: int, submit_links: int, seed: int = 3) -> dict[str, Any]:
    """Enrol ``get_links + submit_links`` BPH patients with a link each; answer every page of
    the submit links. Returns the tokens and the submit links' anti-forgery values."""
    import random

    from sqlalchemy import select

    from tests.support.answering import raw_answer
    from vaikuttavuus.domain.answers import canonical
    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Invitation, TimePoint
    from vaikuttavuus.security.tokens import form_token, token_hash
    from vaikuttavuus.services import patient_flow
    from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol

    rng = random.Random(seed)
    session = db.session
    index_date = date.today() + timedelta(days=INDEX_OFFSET_DAYS)
    baseline = select(TimePoint.id).where(TimePoint.code == "baseline")
    tokens: dict[str, Any] = {"get": [], "submit": [], "form_tokens": {}}
    for number in range(get_links + submit_links):
        person = add_person(
            session,
            NewPerson(first_name="Kuorma", last_name=f"Testi{number}", birth_year=1950, sex="male"),
            source="bench",
        )
        enrolment = enrol(
            session, person, pilot_code="bph", arm_code="operating_room", index_date=index_date
        )
        invitation = session.scalar(
            select(Invitation).where(
                Invitation.enrolment_id == enrolment.id,
                Invitation.time_point_id.in_(baseline),
            )
        )
        assert invitation is not None
        token = patient_flow.issue_token(session, invitation)
        responses = patient_flow.ensure_responses(session, invitation, "fi")
        if number < get_links:
            tokens["get"].append(token)
        else:
            for step in patient_flow.steps_for(responses):
                response = next(r for r in responses if r.id == step.response_id)
                values = {
                    item.id: canonical(step.spec, item, raw_answer(step.spec, item, rng))
                    for item in step.section.items
                }
                patient_flow.save_section(session, response, step.section, values, "fi")
            tokens["submit"].append(token)
            tokens["form_tokens"][token] = form_token(token_hash(token))
        if number % COMMIT_EVERY == COMMIT_EVERY - 1:
            session.commit()
    session.commit()
    return tokens


def count_completed(database_url: str, tokens: list[str]) -> dict[str, int]:
    """How many of the links' invitations are completed, and their submitted responses
    (plain SQL from this process: no app start-up needed)."""
    from sqlalchemy import bindparam, create_engine, text

    from vaikuttavuus import normalise_database_url
    from vaikuttavuus.security.tokens import token_hash

    invitations = "SELECT invitation_id FROM access_tokens WHERE token_hash IN :hashes"
    completed_sql = text(
        f"SELECT count(*) FROM invitations WHERE status = 'completed' AND id IN ({invitations})"
    ).bindparams(bindparam("hashes", expanding=True))
    responses_sql = text(
        "SELECT count(*) FROM responses WHERE status = 'submitted' "
        f"AND invitation_id IN ({invitations})"
    ).bindparams(bindparam("hashes", expanding=True))
    engine = create_engine(normalise_database_url(database_url))
    completed = responses = 0
    try:
        with engine.connect() as connection:
            for start in range(0, len(tokens), 500):
                hashes = [token_hash(t) for t in tokens[start : start + 500]]
                completed += int(connection.scalar(completed_sql, {"hashes": hashes}) or 0)
                responses += int(connection.scalar(responses_sql, {"hashes": hashes}) or 0)
    finally:
        engine.dispose()
    return {"completed": completed, "submitted_responses": responses}


# -- the parent side -----------------------------------------------------------------------


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def combine(app_runs: list[LoadResult], bare_runs: list[LoadResult]) -> Figures:
    """Median figures over rounds of the app and the baseline, and their ratio."""
    figures: Figures = {
        "per_s": _median([r.per_s for r in app_runs]),
        "bare_per_s": _median([r.per_s for r in bare_runs]),
        "ratio_vs_bare": _median(
            [
                a.per_s / b.per_s if b.per_s else None
                for a, b in zip(app_runs, bare_runs, strict=True)
            ]
        ),
    }
    for prefix, runs in (("", app_runs), ("bare_", bare_runs)):
        for q in (50, 95, 99):
            figures[f"{prefix}p{q}_ms"] = _median([r.percentile_ms(q) for r in runs])
        figures[f"{prefix}requests"] = sum(r.sent for r in runs)
        figures[f"{prefix}errors"] = sum(r.errors for r in runs)
    statuses: dict[str, int] = {}
    for run in app_runs:
        for status, count in run.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    figures["statuses"] = statuses
    figures["throttled_429"] = statuses.get("429", 0)
    figures["per_round"] = [
        {"per_s": round(a.per_s, 1), "bare_per_s": round(b.per_s, 1)}
        for a, b in zip(app_runs, bare_runs, strict=True)
    ]
    return figures


def _load(server: ServerProcess, requests: list[Request], **options: Any) -> LoadResult:
    return run_load(server.host, server.port, requests, **options)


def _is_thanks(answer: Answer) -> bool:
    return answer.status == 302 and "/thanks" in answer.headers.get("location", "")


def read_form_tokens(app: ServerProcess, tokens: list[str], concurrency: int) -> dict[str, str]:
    """The anti-forgery value of each link, from its review page."""
    found: dict[str, str] = {}
    lock = threading.Lock()

    def remember(answer: Answer) -> None:
        match = FORM_TOKEN.search(answer.body.decode("utf-8", "replace"))
        if answer.status == 200 and match:
            with lock:
                found[answer.request.tag] = match.group(1)

    pages = [Request("GET", f"/r/{t}/review", tag=t) for t in tokens]
    _load(
        app,
        pages,
        concurrency=concurrency,
        max_requests=len(pages),
        max_seconds=3600,
        check=status_is(200),
        on_response=remember,
        keep_body=True,
    )
    return found


def run_http(context: Context, backend: str | None, wanted: frozenset[str]) -> dict[str, Figures]:
    assert backend is not None
    sizes = context.sizes.http
    workspace = context.workspace
    people = context.sizes.largest
    url = workspace.copy(backend, workspace.dataset(backend, people), "http_copy")
    get_links = sizes.get_links if "page_get" in wanted else 0
    submit_links = sizes.submits_per_round * sizes.rounds if "submit_post" in wanted else 0
    context.say(f"{backend}: enrolling {get_links + submit_links} patients with links")
    links = workspace.run_task("prepare_links", url, get_links=get_links, submit_links=submit_links)
    common = {"workers": sizes.workers, "threads": sizes.threads}
    load = {"concurrency": sizes.concurrency, "max_seconds": sizes.max_seconds}
    settings = {**common, "concurrency": sizes.concurrency, "rounds": sizes.rounds}
    settings |= {"backend": backend, "data_set_people": people}
    out: dict[str, Figures] = {}
    acknowledged: list[str] = []
    try:
        with (
            hello_server(workspace.env(), workspace.log_path(f"hello-{backend}"), **common) as bare,
            app_server(workspace.env(url), workspace.log_path(f"serve-{backend}"), **common) as app,
        ):
            context.say(f"{backend}: servers up (app :{app.port}, bare Flask :{bare.port})")
            hello_get = [Request("GET", "/hello")]
            warm = {
                "concurrency": sizes.concurrency,
                "max_seconds": sizes.max_seconds,
                "check": status_is(200),
            }
            _load(bare, hello_get, max_requests=500, **warm)
            if get_links:
                pages = [Request("GET", f"/r/{t}/1") for t in links["get"]]
                _load(app, pages, max_requests=max(200, 2 * len(pages)), **warm)
                app_runs, bare_runs = [], []
                for number in range(sizes.rounds):
                    context.say(f"{backend}: page GET round {number + 1}/{sizes.rounds}")
                    bare_runs.append(
                        _load(bare, hello_get, max_requests=sizes.get_requests,
                              check=status_is(200), **load)
                    )  # fmt: skip
                    app_runs.append(
                        _load(app, pages, max_requests=sizes.get_requests,
                              check=status_is(200), **load)
                    )  # fmt: skip
                out["page_get"] = {
                    **combine(app_runs, bare_runs),
                    **settings,
                    "links": len(pages),
                    "path": "/r/<token>/1",
                }
            if submit_links:
                form_tokens = links["form_tokens"]
                sample = links["submit"][:FORM_TOKEN_SAMPLE]
                from_pages = read_form_tokens(app, sample, sizes.concurrency)
                if any(from_pages.get(t) != form_tokens[t] for t in sample):
                    raise RuntimeError("the review pages show other form tokens than expected")
                submits = [
                    Request("POST", f"/r/{t}/submit", form={"form_token": form_tokens[t]}, tag=t)
                    for t in links["submit"]
                    if t in form_tokens
                ]
                hello_post = [Request("POST", "/hello", form={"form_token": "0" * 64})]
                app_runs, bare_runs = [], []
                lock = threading.Lock()

                def remember(answer: Answer) -> None:
                    if _is_thanks(answer):
                        with lock:
                            acknowledged.append(answer.request.tag)

                per_round = sizes.submits_per_round
                for number in range(sizes.rounds):
                    context.say(f"{backend}: submit POST round {number + 1}/{sizes.rounds}")
                    bare_runs.append(
                        _load(bare, hello_post, max_requests=sizes.get_requests,
                              check=status_is(302), **load)
                    )  # fmt: skip
                    batch = submits[number * per_round : (number + 1) * per_round]
                    app_runs.append(
                        _load(app, batch, max_requests=len(batch), check=_is_thanks,
                              on_response=remember, **load)
                    )  # fmt: skip
                out["submit_post"] = {
                    **combine(app_runs, bare_runs),
                    **settings,
                    "prepared": len(submits),
                    "form_tokens_checked_on_pages": len(sample),
                }
        if "submit_post" in out:
            stored = count_completed(url, links["submit"])
            figures = out["submit_post"]
            figures["submits"] = len(acknowledged)
            figures["completed_in_db"] = stored["completed"]
            figures["submitted_responses_in_db"] = stored["submitted_responses"]
            figures["verified"] = stored["completed"] == len(acknowledged)
    finally:
        workspace.drop(backend, url)
    return out


register(
    Scenario(
        names=("page_get", "submit_post"),
        run=run_http,
        per_backend=True,
        description="patient page GET and answer submit POST under load vs bare Flask",
    )
)
