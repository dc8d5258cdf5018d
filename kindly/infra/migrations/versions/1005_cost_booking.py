"""costs by step: one row per cost booked on a case at a cadence step (RDG § 13a)

The rules may add a cost (its type, amount, legal basis and a cap per case) at a cadence
step; kindly.claims.costs books it when the step's message is committed. The unique key on
(debtor, step, type) is what makes the booking happen once whatever retries, re-plans,
duplicated jobs or concurrent workers do: the database refuses a second row.

Revision ID: 1005
Revises: 1002
"""

import sqlalchemy as sa
from alembic import op

revision = "1005"
down_revision = "1003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("cost_type", sa.String(length=32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("basis", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_cost_booking_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_cost_booking_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_booking")),
        sa.UniqueConstraint("debtor_id", "step", "cost_type",
                            name=op.f("uq_cost_booking_debtor_id")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("cost_booking")
