"""payments: processed webhook events, plans, instalments, promises; payment kind and intent

Revision ID: 0600
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0600"
down_revision = "0002"
branch_labels = None
depends_on = None

NOW = sa.func.now()


def upgrade() -> None:
    with op.batch_alter_table("payment") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="payment"))
        batch.add_column(sa.Column("intent_ref", sa.String(128), nullable=True))
        batch.add_column(sa.Column("instalment_id", sa.Integer(), nullable=True))
        batch.create_index("ix_payment_intent_ref", ["intent_ref"])
        batch.create_index("ix_payment_instalment_id", ["instalment_id"])
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_event_provider"),
    )
    op.create_table(
        "payment_plan",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "debtor_id",
            sa.Integer(),
            sa.ForeignKey("debtor.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("customer_ref", sa.String(128), nullable=True),
        sa.Column("method_ref", sa.String(128), nullable=True),
        sa.Column("method_type", sa.String(32), nullable=True),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "instalment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "plan_id",
            sa.Integer(),
            sa.ForeignKey("payment_plan.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_on", sa.Date(), nullable=True),
        sa.Column("notified_on", sa.Date(), nullable=True),
        sa.UniqueConstraint("plan_id", "seq", name="uq_instalment_plan_id"),
    )
    op.create_table(
        "payment_promise",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "debtor_id",
            sa.Integer(),
            sa.ForeignKey("debtor.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("promised_on", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_payment_promise_event_id"),
    )


def downgrade() -> None:
    op.drop_table("payment_promise")
    op.drop_table("instalment")
    op.drop_table("payment_plan")
    op.drop_table("webhook_event")
    with op.batch_alter_table("payment") as batch:
        batch.drop_index("ix_payment_instalment_id")
        batch.drop_index("ix_payment_intent_ref")
        batch.drop_column("instalment_id")
        batch.drop_column("intent_ref")
        batch.drop_column("kind")
