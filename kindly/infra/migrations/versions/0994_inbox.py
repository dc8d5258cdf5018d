"""inbox: questions, disputes and call-back requests with an owner and a due time, their
replies, and notes on a case

Revision ID: 0994
Revises: 0993
"""

import sqlalchemy as sa
from alembic import op

revision = "0994"
down_revision = "0991"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_inbox_item_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_inbox_item_debtor_id_debtor")),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="SET NULL",
                                name=op.f("fk_inbox_item_event_id_event")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_item")),
        sa.UniqueConstraint("event_id", name=op.f("uq_inbox_item_event_id")),
    )  # fmt: skip
    op.create_index(op.f("ix_inbox_item_debtor_id"), "inbox_item", ["debtor_id"], unique=False)
    op.create_index("ix_inbox_item_campaign_status", "inbox_item", ["campaign_id", "status"],
                    unique=False)  # fmt: skip
    op.create_table(
        "inbox_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["inbox_item.id"], ondelete="CASCADE",
                                name=op.f("fk_inbox_reply_item_id_inbox_item")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_inbox_reply_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_reply")),
    )  # fmt: skip
    op.create_index(op.f("ix_inbox_reply_item_id"), "inbox_reply", ["item_id"], unique=False)
    op.create_index(op.f("ix_inbox_reply_debtor_id"), "inbox_reply", ["debtor_id"], unique=False)
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_case_note_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_case_note_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_note")),
    )  # fmt: skip
    op.create_index(op.f("ix_case_note_debtor_id"), "case_note", ["debtor_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_case_note_debtor_id"), table_name="case_note")
    op.drop_table("case_note")
    op.drop_index(op.f("ix_inbox_reply_debtor_id"), table_name="inbox_reply")
    op.drop_index(op.f("ix_inbox_reply_item_id"), table_name="inbox_reply")
    op.drop_table("inbox_reply")
    op.drop_index("ix_inbox_item_campaign_status", table_name="inbox_item")
    op.drop_index(op.f("ix_inbox_item_debtor_id"), table_name="inbox_item")
    op.drop_table("inbox_item")
