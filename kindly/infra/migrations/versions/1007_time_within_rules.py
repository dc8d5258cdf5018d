"""time within the rules: a plan's changes, and whether its first miss moves to the end

`plan_change` keeps every change of an agreed plan's schedule (an instalment the debtor moved,
a new payment day, a missed instalment moved to the end), with the dates before and after; a
partial unique index lets a plan's missed instalment move to the end only once.
`payment_plan.missed_to_end` keeps the term the debtor agreed to (off for every older plan).

Revision ID: 1007
Revises: 1002
"""

import sqlalchemy as sa
from alembic import op

revision = "1007"
down_revision = "1008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_plan") as batch:
        batch.add_column(
            sa.Column("missed_to_end", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "plan_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("instalment_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["payment_plan.id"], ondelete="CASCADE",
                                name=op.f("fk_plan_change_plan_id_payment_plan")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_plan_change_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_change")),
    )  # fmt: skip
    op.create_index("ix_plan_change_plan_id", "plan_change", ["plan_id"])
    op.create_index(
        "ux_plan_change_missed_once", "plan_change", ["plan_id"], unique=True,
        sqlite_where=sa.text("kind = 'missed_to_end'"),
        postgresql_where=sa.text("kind = 'missed_to_end'"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ux_plan_change_missed_once", table_name="plan_change")
    op.drop_index("ix_plan_change_plan_id", table_name="plan_change")
    op.drop_table("plan_change")
    with op.batch_alter_table("payment_plan") as batch:
        batch.drop_column("missed_to_end")
