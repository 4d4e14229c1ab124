"""indexes for foreign keys and report queries

Foreign-key columns that had no index (deleting or erasing an enrolment, following a
measurement's correction and listing an invitation's links, messages and responses scanned the
whole table), and the columns the cohort pages, the patient list, the import log and the audit
log filter and sort on. Index names are the models' (``index=True`` columns get the naming
convention's ``ix_<table>_<column>``; composite indexes are named in ``__table_args__``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:08:40.843254
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # foreign keys without an index
    op.create_index(
        op.f("ix_access_tokens_invitation_id"), "access_tokens", ["invitation_id"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_messages_invitation_id"),
        "outbox_messages",
        ["invitation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_responses_invitation_id"), "responses", ["invitation_id"], unique=False
    )
    # only the superseded rows: reads of current values (``IS NULL``) keep the enrolment index
    op.create_index(
        op.f("ix_clinical_measurements_superseded_by_id"),
        "clinical_measurements",
        ["superseded_by_id"],
        unique=False,
        sqlite_where=sa.text("superseded_by_id IS NOT NULL"),
        postgresql_where=sa.text("superseded_by_id IS NOT NULL"),
    )
    # cohort filters (period, unit) and the patient list's order
    op.create_index(
        "ix_enrolments_pilot_index_date", "enrolments", ["pilot_id", "index_date"], unique=False
    )
    op.create_index("ix_enrolments_pilot_unit", "enrolments", ["pilot_id", "unit"], unique=False)
    # a pilot's import log, newest first
    op.create_index(
        "ix_import_batches_pilot_started",
        "import_batches",
        ["pilot_code", "started_at"],
        unique=False,
    )
    # the audit log filtered by user or by action, newest first
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor", "id"], unique=False)
    op.create_index("ix_audit_events_action_id", "audit_events", ["action", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_action_id", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_id", table_name="audit_events")
    op.drop_index("ix_import_batches_pilot_started", table_name="import_batches")
    op.drop_index("ix_enrolments_pilot_unit", table_name="enrolments")
    op.drop_index("ix_enrolments_pilot_index_date", table_name="enrolments")
    op.drop_index(
        op.f("ix_clinical_measurements_superseded_by_id"), table_name="clinical_measurements"
    )
    op.drop_index(op.f("ix_responses_invitation_id"), table_name="responses")
    op.drop_index(op.f("ix_outbox_messages_invitation_id"), table_name="outbox_messages")
    op.drop_index(op.f("ix_access_tokens_invitation_id"), table_name="access_tokens")
