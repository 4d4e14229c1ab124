"""data change log: a pilot's data version in two index lookups

* ``data_changes``: one row per committed transaction that changed what the analyses read
  (:mod:`vaikuttavuus.change_log`), for one pilot or for every pilot (``pilot_id`` NULL).
  The upgrade writes one row for all pilots (pilot_id NULL), so every database starts
  with a version.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "data_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_changes")),
    )
    op.create_index(
        "ix_data_changes_pilot_id_id", "data_changes", ["pilot_id", "id"], unique=False
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(table, [{"pilot_id": None, "token": secrets.token_hex(8), "changed_at": now}])


def downgrade() -> None:
    op.drop_index("ix_data_changes_pilot_id_id", table_name="data_changes")
    op.drop_table("data_changes")
