"""throttle counters; identity codes masked in stored free text; import errors capped

* ``throttle_counters``: the rate-limit counters that every worker and server shares (the
  default ``RATELIMIT_STORAGE_URI = "database://"``).
* Free-text answers stored before this release may hold a personal identity code typed by the
  patient: it is masked now, as new answers are (``domain.answers.free_text``).
* An import rejected for its header stored every header error (a million for a million
  columns): the stored list is cut to the first 1,000, as for row errors; ``error_count``
  keeps the full count.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# domain.identity.IDENTITY_CODE_SHAPE as of this revision (frozen here)
_CODE = re.compile(
    r"(?<![0-9A-Za-z])\d{6}[-+A-FU-Ya-fu-y\u2010-\u2013\u2212]\d{3}[0-9A-Za-z](?![0-9A-Za-z])"
)
MAX_REPORTED_ERRORS = 1000
BATCH = 2000


def _mask(text: str) -> str:
    return _CODE.sub(lambda m: re.sub(r"[0-9A-Za-z]", "*", m.group(0)), text)


def upgrade() -> None:
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_counters")),
    )
    with op.batch_alter_table("throttle_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_throttle_counters_expires_at"), ["expires_at"], unique=False
        )

    bind = op.get_bind()
    answers = sa.table("answers", sa.column("id", sa.Integer), sa.column("value", sa.Text))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(answers.c.id, answers.c.value)
            .where(answers.c.id > last, sa.func.length(answers.c.value) >= 11)
            .order_by(answers.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        changed = [
            {"answer_id": row_id, "masked": _mask(value)}
            for row_id, value in rows
            if value and _CODE.search(value)
        ]
        if changed:
            bind.execute(
                answers.update()
                .where(answers.c.id == sa.bindparam("answer_id"))
                .values(value=sa.bindparam("masked")),
                changed,
            )

    batches = sa.table(
        "import_batches",
        sa.column("id", sa.Integer),
        sa.column("errors", sa.JSON),
        sa.column("error_count", sa.Integer),
    )
    ids = (
        bind.execute(sa.select(batches.c.id).where(batches.c.error_count > MAX_REPORTED_ERRORS))
        .scalars()
        .all()
    )
    for batch_id in ids:
        errors = bind.execute(sa.select(batches.c.errors).where(batches.c.id == batch_id)).scalar()
        if isinstance(errors, list) and len(errors) > MAX_REPORTED_ERRORS:
            bind.execute(
                batches.update()
                .where(batches.c.id == batch_id)
                .values(errors=errors[:MAX_REPORTED_ERRORS])
            )


def downgrade() -> None:
    # The masked answers and the shortened error lists stay as they are.
    with op.batch_alter_table("throttle_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_throttle_counters_expires_at"))
    op.drop_table("throttle_counters")
