"""Answering a personal link's questionnaires through the services (no HTTP), for tests that
need many submitted responses quickly."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.orm import Session

from vaikuttavuus.domain.answers import canonical
from vaikuttavuus.domain.specs import InstrumentSpec, Item
from vaikuttavuus.services import patient_flow


def raw_answer(spec: InstrumentSpec, item: Item, rng: random.Random) -> Any:
    """A valid answer for any item type (random choice, number within range, some text)."""
    if item.type in {"single_choice", "multiple_choice"}:
        codes = [option.code for option in spec.options_for(item)]
        return str(rng.choice(codes))
    if item.type == "scale_0_10":
        return str(rng.randint(0, 10))
    if item.type in {"integer", "decimal"}:
        low, high = item.value_range or (0, 100)
        return str(rng.randint(int(low), int(high)))
    if item.type == "yes_no":
        return rng.choice(["1", "0"])
    if item.type == "date":
        return "2025-06-15"
    return "Vapaa teksti " + str(rng.randint(1, 1000))


def answer_and_submit(
    session: Session,
    token: str,
    *,
    seed: int = 0,
    overrides: dict[str, str] | None = None,
    submit: bool = True,
) -> list[Any]:
    """Answer every item of the link's invitation and (by default) submit; returns the
    responses."""
    rng = random.Random(seed)
    state = patient_flow.resolve(session, token)
    assert state.usable and state.invitation is not None, state.problem
    responses = patient_flow.ensure_responses(session, state.invitation, "fi")
    steps = patient_flow.steps_for(responses)
    for step in steps:
        response = next(r for r in responses if r.id == step.response_id)
        values = {}
        for item in step.section.items:
            raw = (overrides or {}).get(item.id) or raw_answer(step.spec, item, rng)
            values[item.id] = canonical(step.spec, item, raw)
        patient_flow.save_section(session, response, step.section, values, "fi")
    if submit:
        result = patient_flow.submit(session, state.invitation, responses, steps)
        assert result.submitted
    session.commit()
    return responses
