"""response mode and proxy; imported responses

``responses.mode`` becomes how the answers were given — ``web``, ``phone``, ``paper`` or
``imported`` — instead of who typed them (``self``/``assisted``); ``responses.proxy`` says
whether someone else (a relative or a staff member) answered for the person, and
``responses.import_batch_id`` names the import a response came from.
``import_batches.allow_outside_window`` records ``import responses --allow-outside-window``;
``import_batches.notes``/``note_count`` keep the notes on rows that were stored all the same
(a required item left unanswered).

Existing rows: ``self`` → ``web`` (the patient's own link). ``assisted`` → ``phone``: staff
entry did not record whether the answers were read over the phone or copied from paper, and
assisted entry was mostly used for phone calls; these responses keep ``entered_by_user_id``,
so they can still be told apart from later phone entries. Nobody is marked as a proxy.
Downgrade: ``web`` → ``self``, everything else → ``assisted`` (proxy and the import link are
dropped).

SQLite: the new CHECK constraint needs the ``responses`` table to be recreated (batch mode).
Dropping the old table would fire ``ON DELETE CASCADE`` on ``answers`` while foreign keys are
enforced (and ``PRAGMA foreign_keys`` cannot be changed inside the migration's transaction),
so the answers are kept in a temporary table and put back afterwards. The old constraint is
set aside with ``PRAGMA ignore_check_constraints`` while the modes are converted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_MODES = "mode IN ('self', 'assisted')"
NEW_MODES = "mode IN ('web', 'phone', 'paper', 'imported')"
TO_NEW = "CASE mode WHEN 'self' THEN 'web' WHEN 'assisted' THEN 'phone' ELSE mode END"
TO_OLD = "CASE mode WHEN 'web' THEN 'self' ELSE 'assisted' END"
CONSTRAINT = "ck_responses_mode_known"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


@contextmanager
def _answers_kept() -> Iterator[None]:
    """SQLite with enforced foreign keys: keep the answers while ``responses`` is recreated."""
    bind = op.get_bind()
    enforced = _sqlite() and bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar())
    if not enforced:
        yield
        return
    op.execute("DROP TABLE IF EXISTS temp.answers_0003")
    op.execute("CREATE TEMPORARY TABLE answers_0003 AS SELECT * FROM answers")
    yield
    op.execute("DELETE FROM answers")
    op.execute("INSERT INTO answers SELECT * FROM temp.answers_0003")
    op.execute("DROP TABLE temp.answers_0003")


def _convert_modes(expression: str) -> None:
    """Rewrite ``responses.mode`` while the CHECK constraint does not apply."""
    if _sqlite():
        op.execute("PRAGMA ignore_check_constraints = ON")
        op.execute(f"UPDATE responses SET mode = {expression}")
        op.execute("PRAGMA ignore_check_constraints = OFF")
    else:
        op.drop_constraint(op.f(CONSTRAINT), "responses", type_="check")
        op.execute(f"UPDATE responses SET mode = {expression}")


def upgrade() -> None:
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "allow_outside_window", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("notes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("note_count", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    _convert_modes(TO_NEW)
    with _answers_kept(), op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("proxy", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("import_batch_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_responses_import_batch_id_import_batches"),
            "import_batches",
            ["import_batch_id"],
            ["id"],
        )
        if _sqlite():
            batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(CONSTRAINT), sa.text(NEW_MODES))


def downgrade() -> None:
    _convert_modes(TO_OLD)
    with _answers_kept(), op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("fk_responses_import_batch_id_import_batches"), type_="foreignkey"
        )
        batch_op.drop_column("import_batch_id")
        batch_op.drop_column("proxy")
        if _sqlite():
            batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(CONSTRAINT), sa.text(OLD_MODES))
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_column("note_count")
        batch_op.drop_column("notes")
        batch_op.drop_column("allow_outside_window")
