"""Patient pages: a personal link leads through the time point's questionnaires.

No account and no session are needed: the link's token identifies the invitation, and form
posts carry an anti-forgery value bound to the token, so answers survive a long pause.
Unknown, expired and cancelled links get the same page. Guessing is throttled: misses are
counted per address and answered 429 over the limit, while a valid link is always served
(:mod:`vaikuttavuus.security.throttle`). A link is served only at its plain address
(``/r/<token>…``); the same path with percent-encoded characters (``/r%2F<token>``,
``/%72/<token>``) is a miss, so links travel in one form only and the access log's masking
(:mod:`vaikuttavuus.server`) always recognises them.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import refresh
from werkzeug.wrappers import Response

from vaikuttavuus.domain.answers import (
    display_value,
    enabled_item_ids,
    is_enabled,
    missing_required,
)
from vaikuttavuus.domain.specs import UnitContact
from vaikuttavuus.extensions import csrf, db, limiter
from vaikuttavuus.forms.questionnaire import build_section_form, collect_answers, describe_field
from vaikuttavuus.models import Invitation
from vaikuttavuus.security.access import public
from vaikuttavuus.security.throttle import note_breach, too_many_attempts
from vaikuttavuus.security.tokens import form_token, form_token_valid
from vaikuttavuus.services import audit, patient_flow
from vaikuttavuus.services.patient_flow import LinkState, Step
from vaikuttavuus.views import question_cache

bp = Blueprint("patient", __name__, url_prefix="/r")
csrf.exempt(bp)


def _miss_limit() -> str:
    return str(current_app.config["PATIENT_LINK_MISS_LIMIT"])


@bp.before_request
def _plain_path_only() -> Response | None:
    """A link is served only at its plain address: a path that reached this blueprint with
    percent-encoded characters gets the invalid-link page (and counts as a miss)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw is None:
        return None
    path = raw.split("?", 1)[0]
    if "://" in path:  # an absolute request target: look at its path only
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    if path.startswith("/r/") and "%" not in path:
        return None
    return _problem_page(LinkState("invalid"), "")


@bp.after_request
def _count_misses(response: Response) -> Response:
    """Misses (the invalid-link page, 404) are counted per address; over the limit a miss is
    answered 429. Valid links are never counted nor refused."""
    if response.status_code != 404:
        return response
    current_app.logger.warning("invalid patient link from %s", request.remote_addr)
    limit, who = _miss_limit(), ("patient-link", request.remote_addr or "-")
    if limiter.hit(limit, *who):
        return response
    note_breach(limit, who, "patient_link_throttled", actor="patient-link")
    return too_many_attempts(limiter.retry_after(limit, *who))


@bp.before_request
def _write_at_the_end() -> None:
    """Reads first, writes together at the end of the request.

    Patient requests read the link, responses and answers before they change anything; with
    autoflush the link's bookkeeping (opened, last used) would be written by the first read
    after it and the write lock held while the page is built. Every write in the flow flushes
    explicitly, so nothing read here depends on autoflush.
    """
    db.session.autoflush = False


@bp.teardown_request
def _autoflush_again(_error: BaseException | None) -> None:
    db.session.autoflush = True


# -- helpers ---------------------------------------------------------------------------------


LANGUAGE_COOKIE = "patient_language"
"""The language a person chose with the page's language links, remembered by this browser
only: another device opens the link in the language the unit registered (see _language)."""


def _language(state: LinkState) -> str:
    """The page language: ?lang= (the language links), else this browser's earlier choice,
    else the person's registered language, else Finnish.

    Choosing a language on the page does not change the person's registered language (the
    language of their messages and of a new device); sending the answers in a language does
    (see :func:`submit`).
    """
    person = state.invitation.enrolment.person if state.invitation else None
    languages = current_app.config["LANGUAGES"]
    requested = request.args.get("lang")
    remembered = request.cookies.get(LANGUAGE_COOKIE)
    if requested in languages:
        language = str(requested)
    elif remembered in languages:
        language = str(remembered)
    elif person is not None and person.preferred_language in languages:
        language = person.preferred_language
    else:
        language = "fi"
    g.patient_language = language
    refresh()
    return language


@bp.after_request
def _remember_language(response: Response) -> Response:
    """A language chosen with the language links is remembered by this browser (for the
    patient pages only)."""
    requested = request.args.get("lang")
    if requested in current_app.config["LANGUAGES"] and (
        request.cookies.get(LANGUAGE_COOKIE) != requested
    ):
        response.set_cookie(
            LANGUAGE_COOKIE,
            str(requested),
            max_age=365 * 24 * 3600,
            path="/r/",
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        )
    return response


def _render(template: str, status: int = 200, **context: Any) -> Response:
    response = make_response(render_template(template, **context), status)
    size = request.args.get("text")
    if size in {"large", "normal"}:
        response.set_cookie(
            "text_size",
            size,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        )
    return response


def _contact(state: LinkState) -> UnitContact | None:
    if state.invitation is None:
        return None
    return patient_flow.unit_contact(state.invitation.enrolment)


def _problem_page(state: LinkState, token: str) -> Response:
    language = _language(state)
    contact = _contact(state)
    if state.problem == "completed":
        return _render(
            "patient/done.html", token=token, language=language, state=state, contact=contact
        )
    if state.problem == "opted_out":
        return _render("patient/opted_out.html", token=token, language=language, contact=contact)
    if state.problem == "not_open_yet" and state.invitation is not None:
        return _render(
            "patient/not_open.html",
            language=language,
            opens_on=state.invitation.opens_on,
            contact=contact,
        )
    return _render("patient/invalid.html", status=404, language=language)


def _load(token: str) -> tuple[LinkState, Response | None]:
    if len(token) > 100:
        return LinkState("invalid"), _problem_page(LinkState("invalid"), token)
    state = patient_flow.resolve(db.session, token)
    if not state.usable:
        return state, _problem_page(state, token)
    return state, None


def _check_form_token(state: LinkState) -> None:
    if not form_token_valid(state.token_digest, request.form.get("form_token")):
        abort(400)


def _context(state: LinkState, token: str, language: str) -> dict[str, Any]:
    invitation = state.invitation
    assert invitation is not None
    return {
        "token": token,
        "language": language,
        "form_token": form_token(state.token_digest),
        "pilot": invitation.enrolment.pilot,
        "time_point": invitation.time_point,
        "closes_on": invitation.closes_on,
        "contact": _contact(state),
    }


def _audit(action: str, invitation: Invitation, **details: Any) -> None:
    """An audit event of the person acting through their link (never the answers given)."""
    enrolment = invitation.enrolment
    audit.record(
        action,
        object_type="invitation",
        object_id=invitation.id,
        person_id=enrolment.person_id,
        pilot_code=enrolment.pilot.code,
        actor="patient",
        details={"time_point": invitation.time_point.code, **details},
    )


def _steps(state: LinkState, language: str) -> tuple[list[Any], list[Step]]:
    assert state.invitation is not None
    responses = patient_flow.ensure_responses(db.session, state.invitation, language)
    return responses, patient_flow.steps_for(responses)


# -- pages -----------------------------------------------------------------------------------


@bp.get("/<token>")
@public
def start(token: str) -> Response:
    state, problem = _load(token)
    if problem is not None:
        return problem
    language = _language(state)
    responses, steps = _steps(state, language)
    answers = patient_flow.stored_answers(db.session, [r.id for r in responses])
    started = any(answers[r.id] for r in responses)
    first_open = _first_incomplete(steps, answers) or 1
    return _render(
        "patient/start.html",
        **_context(state, token, language),
        responses=responses,
        steps=steps,
        started=started,
        next_step=first_open,
    )


def _first_incomplete(steps: list[Step], answers: dict[int, dict[str, str]]) -> int | None:
    for step in steps:
        stored = answers[step.response_id]
        shown = set(enabled_item_ids(step.spec, stored))
        if any(item.id in shown and item.id not in stored for item in step.section.items):
            return step.number
    return None


@bp.route("/<token>/<int:number>", methods=["GET", "POST"])
@public
def step(token: str, number: int) -> Response:
    state, problem = _load(token)
    if problem is not None:
        return problem
    language = _language(state)
    responses, steps = _steps(state, language)
    if not 1 <= number <= len(steps):
        return redirect(url_for("patient.start", token=token))
    current = steps[number - 1]
    response = next(r for r in responses if r.id == current.response_id)
    stored = patient_flow.stored_answers(db.session, [response.id])[response.id]
    errors: dict[str, str] = {}
    if request.method == "POST":
        _check_form_token(state)
        form = build_section_form(current.spec, current.section, language, formdata=request.form)
        direction = request.form.get("direction", "next")
        others = {k: v for k, v in stored.items() if k not in {i.id for i in current.section.items}}
        values, errors = collect_answers(form, others, enforce_required=direction == "next")
        # Every valid answer is kept even when another item on the page needs fixing.
        patient_flow.save_section(
            db.session,
            response,
            current.section,
            {k: v for k, v in values.items() if k not in errors},
            language,
        )
        if not errors or direction == "back":
            if direction == "back":
                target = number - 1
                if target < 1:
                    return redirect(url_for("patient.start", token=token, lang=language))
            elif direction == "review" or number == len(steps):
                return redirect(url_for("patient.review", token=token, lang=language))
            else:
                target = number + 1
            return redirect(url_for("patient.step", token=token, number=target, lang=language))
    else:
        form = build_section_form(current.spec, current.section, language, stored=stored)
    status = 422 if errors else 200
    questions: dict[str, Any] = {  # the questions template's context
        "form": form,
        "errors": errors,
        "describe_field": describe_field,
        "enable_rules": _enable_rules(current),
        "hidden_items": _hidden_by_other_pages(current, stored),
    }
    if not errors:
        questions["questions_html"] = question_cache.questions_html(
            current,
            language,
            stored,
            questions["hidden_items"],
            render=lambda: render_template(
                "patient/_questions.html", language=language, **questions
            ),
        )
    services = (
        patient_flow.services_received(db.session, state.invitation, language)
        if current.spec.kind == "prem" and state.invitation is not None
        else []
    )
    page = _render(
        "patient/step.html",
        status=status,
        **_context(state, token, language),
        current=current,
        steps=steps,
        services_received=services,
        **questions,
    )
    page.commit_on_error = True  # type: ignore[attr-defined]  # keep the valid answers
    return page


def _hidden_by_other_pages(current: Step, stored: dict[str, str]) -> set[str]:
    """Items whose conditions all refer to other pages and are not met: hidden outright.

    Conditions on items of the same page are left to the page script (and re-checked here
    when the page is sent), so the page also works without JavaScript.
    """
    on_page = {item.id for item in current.section.items}
    others = {k: v for k, v in stored.items() if k not in on_page}
    return {
        item.id
        for item in current.section.items
        if item.enable_when
        and all(c.item not in on_page for c in item.enable_when)
        and not is_enabled(item, others)
    }


def _enable_rules(current: Step) -> dict[str, list[dict[str, Any]]]:
    """Conditions for the page's script, so dependent questions appear without a reload."""
    rules: dict[str, list[dict[str, Any]]] = {}
    for item in current.section.items:
        if item.enable_when:
            rules[item.id] = [
                {
                    "item": c.item,
                    "operator": c.operator,
                    "value": c.value,
                    "behavior": item.enable_behavior,
                }
                for c in item.enable_when
            ]
    return rules


@bp.get("/<token>/review")
@public
def review(token: str) -> Response:
    state, problem = _load(token)
    if problem is not None:
        return problem
    language = _language(state)
    responses, steps = _steps(state, language)
    answers = patient_flow.stored_answers(db.session, [r.id for r in responses])
    pages = []
    for s in steps:
        stored = answers[s.response_id]
        shown = set(enabled_item_ids(s.spec, stored))
        missing = set(missing_required(s.spec, stored))
        rows = [
            {
                "text": item.text.get(language),
                "answer": display_value(s.spec, item, stored.get(item.id), language),
                "missing": item.id in missing,
            }
            for item in s.section.items
            if item.id in shown
        ]
        pages.append({"step": s, "rows": rows, "incomplete": any(r["missing"] for r in rows)})
    return _render(
        "patient/review.html",
        **_context(state, token, language),
        pages=pages,
        complete=not any(p["incomplete"] for p in pages),
    )


@bp.post("/<token>/submit")
@public
def submit(token: str) -> Response:
    state, problem = _load(token)
    if state.problem == "completed":
        # A double click, a retry after a timeout or the back button: already stored.
        return redirect(url_for("patient.thanks", token=token))
    if problem is not None:
        return problem
    _check_form_token(state)
    language = _language(state)
    responses, steps = _steps(state, language)
    assert state.invitation is not None
    result = patient_flow.submit(db.session, state.invitation, responses, steps)
    if not result.submitted:
        return redirect(
            url_for(
                "patient.step",
                token=token,
                number=result.first_incomplete_step,
                lang=language,
                incomplete=1,
            )
        )
    if not result.already:
        # The language the answers were given in becomes the person's language: the next
        # messages and a new device use it.
        person = state.invitation.enrolment.person
        if person.preferred_language != language:
            person.preferred_language = language
        _audit(
            "patient_submit",
            state.invitation,
            responses=[r.id for r in responses],
            instruments=[r.instrument_code for r in responses],
            language=language,
        )
    return redirect(url_for("patient.thanks", token=token, lang=language))


@bp.get("/<token>/thanks")
@public
def thanks(token: str) -> Response:
    state = patient_flow.resolve(db.session, token)
    if state.problem != "completed":
        return _load(token)[1] or redirect(url_for("patient.start", token=token))
    language = _language(state)
    return _render("patient/thanks.html", token=token, language=language, contact=_contact(state))


@bp.route("/<token>/opt-out", methods=["GET", "POST"])
@public
def opt_out(token: str) -> Response:
    state = patient_flow.resolve(db.session, token)
    if state.invitation is None:
        return _problem_page(state, token)
    language = _language(state)
    if state.problem == "opted_out":
        if request.method == "POST":  # sent twice: already done, show the page again
            _check_form_token(state)
            return redirect(url_for("patient.opt_out", token=token, lang=language))
        return _render(
            "patient/opted_out.html", token=token, language=language, contact=_contact(state)
        )
    if request.method == "POST":
        _check_form_token(state)
        stopped = patient_flow.opt_out(db.session, state.invitation)
        _audit("patient_opt_out", state.invitation, invitations_stopped=stopped)
        return redirect(url_for("patient.opt_out", token=token, lang=language))
    return _render(
        "patient/opt_out.html",
        token=token,
        language=language,
        form_token=form_token(state.token_digest),
        contact=_contact(state),
    )
