"""claim items: several invoices per case, and the payments that name them (Select & Pay)

Revision ID: 1003
Revises: 1002
"""

import sqlalchemy as sa
from alembic import op

revision = "1003"
down_revision = "1004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claim_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=100), nullable=False),
        sa.Column("item_date", sa.Date(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("principal_minor", sa.BigInteger(), nullable=True),
        sa.Column("interest_minor", sa.BigInteger(), nullable=True),
        sa.Column("fees_minor", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_reference", sa.String(length=25), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_claim_item_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_item")),
        sa.UniqueConstraint("debtor_id", "item_id", name=op.f("uq_claim_item_debtor_id")),
        sa.UniqueConstraint("payment_reference", name=op.f("uq_claim_item_payment_reference")),
    )  # fmt: skip
    op.create_index(op.f("ix_claim_item_debtor_id"), "claim_item", ["debtor_id"])
    op.create_table(
        "payment_item",
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"], ondelete="CASCADE",
                                name=op.f("fk_payment_item_payment_id_payment")),
        sa.ForeignKeyConstraint(["item_id"], ["claim_item.id"], ondelete="CASCADE",
                                name=op.f("fk_payment_item_item_id_claim_item")),
        sa.PrimaryKeyConstraint("payment_id", "item_id", name=op.f("pk_payment_item")),
    )  # fmt: skip
    op.create_index(op.f("ix_payment_item_item_id"), "payment_item", ["item_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_payment_item_item_id"), table_name="payment_item")
    op.drop_table("payment_item")
    op.drop_index(op.f("ix_claim_item_debtor_id"), table_name="claim_item")
    op.drop_table("claim_item")
