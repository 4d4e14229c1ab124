"""Assisted entry: staff enter a patient's answers (phone interview, paper form).

The answers go through :mod:`vaikuttavuus.services.patient_flow` exactly like the patient's
own, with the responses recorded with the mode staff chose (``phone`` or ``paper``), whether
someone else answered for the patient (``proxy``) and the user who entered them. A response the
patient had started on their own takes the staff entry's mode as soon as staff save a page of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, update

from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.answers import display_value, enabled_item_ids, missing_required
from vaikuttavuus.models import Invitation, Response
from vaikuttavuus.services import patient_flow
from vaikuttavuus.services.schedule import unanswered_and_answerable


def problem(invitation: Invitation) -> str | None:
    """Why staff cannot enter answers for ``invitation`` (None when they can)."""
    if invitation.status == "completed" or invitation.completed_at is not None:
        return "completed"
    if not unanswered_and_answerable(invitation):
        return invitation.status if invitation.status != "expired" else "not_active"
    return None


ASSISTED_MODES = ("phone", "paper")
"""How staff got the answers they enter."""


def responses_for(
    session: AnySession,
    invitation: Invitation,
    language: str,
    user_id: int,
    *,
    mode: str = "phone",
    proxy: bool = False,
) -> list[Response]:
    """The invitation's responses, created as entries by ``user_id`` (``mode`` phone or
    paper) if new."""
    if mode not in ASSISTED_MODES:
        raise ValueError(f"unknown assisted-entry mode '{mode}'")
    return patient_flow.ensure_responses(
        session, invitation, language, mode=mode, proxy=proxy, entered_by_user_id=user_id
    )


def mark_assisted(
    session: AnySession,
    responses: list[Response],
    user_id: int,
    *,
    mode: str = "phone",
    proxy: bool = False,
) -> None:
    """Record that ``user_id`` entered answers of these (unsubmitted) responses, given by
    ``mode`` (phone or paper), by someone else for the patient when ``proxy``."""
    if mode not in ASSISTED_MODES:
        raise ValueError(f"unknown assisted-entry mode '{mode}'")
    ids = [r.id for r in responses if r.status == "in_progress"]
    if not ids:
        return
    session.execute(
        update(Response)
        .where(
            Response.id.in_(ids),
            Response.status == "in_progress",
            or_(
                Response.mode != mode,
                Response.proxy != proxy,
                Response.entered_by_user_id.is_(None),
                Response.entered_by_user_id != user_id,
            ),
        )
        .values(mode=mode, proxy=proxy, entered_by_user_id=user_id)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()


def review_pages(
    steps: list[patient_flow.Step], answers: dict[int, dict[str, str]], language: str
) -> list[dict[str, Any]]:
    """The review page's sections: every shown item with its answer or a missing mark."""
    pages = []
    for step in steps:
        stored = answers[step.response_id]
        shown = set(enabled_item_ids(step.spec, stored))
        missing = set(missing_required(step.spec, stored))
        rows = [
            {
                "text": item.text.get(language),
                "answer": display_value(step.spec, item, stored.get(item.id), language),
                "missing": item.id in missing,
            }
            for item in step.section.items
            if item.id in shown
        ]
        pages.append({"step": step, "rows": rows, "incomplete": any(r["missing"] for r in rows)})
    return pages
