"""disputes: a debtor's dispute of a claim with its documents

Revision ID: 1008
Revises: 1002
"""

import sqlalchemy as sa
from alembic import op

revision = "1008"
down_revision = "1002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("item_ref", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answer_by", sa.Date(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("inbox_item_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("amount_before_minor", sa.BigInteger(), nullable=True),
        sa.Column("amount_after_minor", sa.BigInteger(), nullable=True),
        sa.Column("answer_channel", sa.String(length=16), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_dispute_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_dispute_debtor_id_debtor")),
        sa.ForeignKeyConstraint(["hold_id"], ["case_hold.id"], ondelete="SET NULL",
                                name=op.f("fk_dispute_hold_id_case_hold")),
        sa.ForeignKeyConstraint(["inbox_item_id"], ["inbox_item.id"], ondelete="SET NULL",
                                name=op.f("fk_dispute_inbox_item_id_inbox_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute")),
    )  # fmt: skip
    op.create_index(op.f("ix_dispute_debtor_id"), "dispute", ["debtor_id"], unique=False)
    op.create_table(
        "dispute_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispute_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("scan", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dispute_id"], ["dispute.id"], ondelete="CASCADE",
                                name=op.f("fk_dispute_file_dispute_id_dispute")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_file")),
        sa.UniqueConstraint("key", name=op.f("uq_dispute_file_key")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_dispute_file_dispute_id"), "dispute_file", ["dispute_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dispute_file_dispute_id"), table_name="dispute_file")
    op.drop_table("dispute_file")
    op.drop_index(op.f("ix_dispute_debtor_id"), table_name="dispute")
    op.drop_table("dispute")
