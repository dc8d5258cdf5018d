"""refunds: overpayments handed back, and the pain.001 files that paid them

Revision ID: 0999
Revises: 0994, 0997
"""

import sqlalchemy as sa
from alembic import op

revision = "0999"
# joins main's head (0994, inbox) and the bank tables (0997) it builds on; the lead re-chains
down_revision = "0997"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refund_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.String(length=35), nullable=False),
        sa.Column("account_iban", sa.String(length=34), nullable=False),
        sa.Column("account_bic", sa.String(length=11), nullable=True),
        sa.Column("account_name", sa.String(length=70), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_export")),
        sa.UniqueConstraint("msg_id", name=op.f("uq_refund_export_msg_id")),
    )
    op.create_table(
        "refund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("way", sa.String(length=16), nullable=False),
        sa.Column("payer_iban", sa.String(length=34), nullable=True),
        sa.Column("payer_bic", sa.String(length=11), nullable=True),
        sa.Column("payer_name", sa.String(length=200), nullable=True),
        sa.Column("source_payment_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approved_by", sa.String(length=320), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("booked_payment_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_refund_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_refund_debtor_id_debtor")),
        sa.ForeignKeyConstraint(["source_payment_id"], ["payment.id"], ondelete="SET NULL",
                                name=op.f("fk_refund_source_payment_id_payment")),
        sa.ForeignKeyConstraint(["booked_payment_id"], ["payment.id"], ondelete="SET NULL",
                                name=op.f("fk_refund_booked_payment_id_payment")),
        sa.ForeignKeyConstraint(["export_id"], ["refund_export.id"], ondelete="SET NULL",
                                name=op.f("fk_refund_export_id_refund_export")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund")),
        sa.UniqueConstraint("end_to_end_id", name=op.f("uq_refund_end_to_end_id")),
    )  # fmt: skip
    op.create_index(op.f("ix_refund_debtor_id"), "refund", ["debtor_id"], unique=False)
    op.create_index(op.f("ix_refund_status"), "refund", ["status"], unique=False)
    op.create_index("uq_refund_due_debtor", "refund", ["debtor_id"], unique=True,
                    postgresql_where=sa.text("status = 'due'"),
                    sqlite_where=sa.text("status = 'due'"))  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_refund_due_debtor", table_name="refund")
    op.drop_index(op.f("ix_refund_status"), table_name="refund")
    op.drop_index(op.f("ix_refund_debtor_id"), table_name="refund")
    op.drop_table("refund")
    op.drop_table("refund_export")
