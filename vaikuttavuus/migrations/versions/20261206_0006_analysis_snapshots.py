"""analysis snapshots: stored results of the analyses, per data version

* ``analysis_snapshots``: one row per analysis key (pilot, kind, parameters), code and
  definition version and data version; claimed while it is built (a lease), ``ready`` with its
  signed payload in one transaction (:mod:`vaikuttavuus.services.snapshots`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pilot_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params_key", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("code_version", sa.String(length=64), nullable=False),
        sa.Column("data_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("data_taken_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("signature", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pilot_id"],
            ["pilots.id"],
            name=op.f("fk_analysis_snapshots_pilot_id_pilots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_snapshots")),
        sa.UniqueConstraint(
            "pilot_id",
            "kind",
            "params_key",
            "code_version",
            "data_version",
            name="uq_analysis_snapshots_key",
        ),
    )
    op.create_index(
        "ix_analysis_snapshots_lookup",
        "analysis_snapshots",
        ["pilot_id", "kind", "params_key", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_analysis_snapshots_lookup", table_name="analysis_snapshots")
    op.drop_table("analysis_snapshots")
