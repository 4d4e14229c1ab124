"""The scheduler and the outbox at county scale (:mod:`bench.invitations_scale`).

Not a goal of ``performance.md`` (so a quick run leaves it out unless ``--only invitations``
asks for it) but a cost every deployment pays on each cron run: on a copy of
the empty template, the largest number of people are enrolled without invitations; the first
``refresh`` creates them, the first ``enqueue`` queues a message for each, then the steady
state (both again) and the reminders a week later are timed.
"""

from __future__ import annotations

import os
from typing import Any

from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.tasks import task


@task("invitations", needs_app=False)
def invitations_task(people: int) -> dict[str, Any]:
    from bench.invitations_scale import run

    return run(os.environ["DATABASE_URL"], people)


def run_invitations(
    context: Context, backend: str | None, _wanted: frozenset[str]
) -> dict[str, Figures]:
    assert backend is not None
    workspace = context.workspace
    people = context.sizes.largest
    url = workspace.copy(backend, workspace.template(backend), "invitations_copy")
    context.say(f"{backend}: invitations refresh and outbox, {people} people")
    try:
        figures = workspace.run_task("invitations", url, people=people)
    finally:
        workspace.drop(backend, url)
    return {"invitations": figures}


register(
    Scenario(
        names=("invitations",),
        run=run_invitations,
        per_backend=True,
        description="invitation refresh and outbox enqueue (not in --quick without --only)",
        in_quick=False,
    )
)
