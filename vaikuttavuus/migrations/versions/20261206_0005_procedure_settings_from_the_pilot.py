"""procedure settings come from the pilot definition

The ``procedures.setting`` column allowed only ``operating_room`` and ``outpatient_clinic`` (a
check constraint): a pilot declares its own settings now (``procedure_settings``, or its arms),
and the import checks them per pilot and arm. The constraint goes and the column takes an id
as long as an arm's (40 characters).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_SETTINGS = ("operating_room", "outpatient_clinic")


def upgrade() -> None:
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_procedures_setting_known"), type_="check")
        batch_op.alter_column(
            "setting",
            existing_type=sa.String(length=20),
            type_=sa.String(length=40),
            existing_nullable=False,
        )


def downgrade() -> None:
    """Back to the two BPH settings: refused (nothing changed) while a procedure of another
    setting is stored."""
    procedures = sa.table("procedures", sa.column("setting", sa.String))
    others = op.get_bind().scalar(
        sa.select(sa.func.count()).where(procedures.c.setting.not_in(OLD_SETTINGS))
    )
    if others:
        raise RuntimeError(
            f"{others} procedure(s) have a setting other than {', '.join(OLD_SETTINGS)}; "
            "revision 0004 cannot store them. Delete or change them first."
        )
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        batch_op.alter_column(
            "setting",
            existing_type=sa.String(length=40),
            type_=sa.String(length=20),
            existing_nullable=False,
        )
        batch_op.create_check_constraint(
            op.f("ck_procedures_setting_known"),
            "setting IN ('operating_room', 'outpatient_clinic')",
        )
