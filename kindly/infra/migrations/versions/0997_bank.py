"""bank statements: payment references, statement files, entries once by identity, allocations

Revision ID: 0997
Revises: 0992

Every debtor gets its ISO 11649 payment reference (existing rows are filled in here, from the
campaign's slug and the debtor's reference, as an import would); payments learn how the money
came (`method`), the payer's IBAN and the day it arrived.
"""

import sqlalchemy as sa
from alembic import op

from kindly.bank.rf import rf_for

revision = "0997"
down_revision = "0992"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("debtor") as batch:
        batch.add_column(sa.Column("payment_reference", sa.String(length=25), nullable=True))
    _backfill()
    op.create_index(
        op.f("ix_debtor_payment_reference"), "debtor", ["payment_reference"], unique=True
    )
    with op.batch_alter_table("payment") as batch:
        batch.add_column(sa.Column("method", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("payer_iban", sa.String(length=34), nullable=True))
        batch.add_column(sa.Column("received_on", sa.Date(), nullable=True))

    op.create_table(
        "bank_statement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=34), nullable=True),
        sa.Column("statement_ref", sa.String(length=200), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=320), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "entries", "matched", "unmatched", "ignored", "returned", "already_imported")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="SET NULL",
                                name=op.f("fk_bank_statement_campaign_id_campaign")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statement")),
        sa.UniqueConstraint("sha256", name=op.f("uq_bank_statement_sha256")),
    )  # fmt: skip
    op.create_table(
        "bank_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=34), nullable=True),
        sa.Column("entry_ref", sa.String(length=200), nullable=True),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("credit", sa.Boolean(), nullable=False),
        sa.Column("bank_status", sa.String(length=16), nullable=False),
        sa.Column("counterparty_name", sa.String(length=200), nullable=True),
        sa.Column("counterparty_iban", sa.String(length=34), nullable=True),
        sa.Column("counterparty_bic", sa.String(length=11), nullable=True),
        sa.Column("remittance", sa.Text(), nullable=False),
        sa.Column("creditor_reference", sa.String(length=64), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=64), nullable=True),
        sa.Column("bank_code", sa.String(length=64), nullable=True),
        sa.Column("is_return", sa.Boolean(), nullable=False),
        sa.Column("return_reason", sa.String(length=64), nullable=True),
        sa.Column("original_reference", sa.String(length=200), nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=True),
        sa.Column("matched_text", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["statement_id"], ["bank_statement.id"], ondelete="CASCADE",
                                name=op.f("fk_bank_entry_statement_id_bank_statement")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_entry")),
        sa.UniqueConstraint("identity", name=op.f("uq_bank_entry_identity")),
    )  # fmt: skip
    op.create_index(op.f("ix_bank_entry_statement_id"), "bank_entry", ["statement_id"])
    # partial: most entries have no end-to-end id and only a few wait in the queue
    op.create_index("ix_bank_entry_end_to_end_id", "bank_entry", ["end_to_end_id"],
                    postgresql_where=sa.text("end_to_end_id IS NOT NULL"),
                    sqlite_where=sa.text("end_to_end_id IS NOT NULL"))  # fmt: skip
    op.create_index("ix_bank_entry_waiting", "bank_entry", ["id"],
                    postgresql_where=sa.text("state = 'unmatched'"),
                    sqlite_where=sa.text("state = 'unmatched'"))  # fmt: skip
    op.create_table(
        "bank_allocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["bank_entry.id"], ondelete="CASCADE",
                                name=op.f("fk_bank_allocation_entry_id_bank_entry")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_bank_allocation_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_allocation")),
        sa.UniqueConstraint("entry_id", "seq", name=op.f("uq_bank_allocation_entry_id")),
    )  # fmt: skip
    op.create_index(op.f("ix_bank_allocation_debtor_id"), "bank_allocation", ["debtor_id"])


def _backfill() -> None:
    """Give every existing debtor the reference an import would give it now."""
    connection = op.get_bind()
    debtor = sa.table(
        "debtor", sa.column("id"), sa.column("campaign_id"), sa.column("reference"),
        sa.column("payment_reference"),
    )  # fmt: skip
    campaign = sa.table("campaign", sa.column("id"), sa.column("slug"))
    rows = connection.execute(
        sa.select(debtor.c.id, campaign.c.slug, debtor.c.reference)
        .join(campaign, campaign.c.id == debtor.c.campaign_id)
        .where(debtor.c.payment_reference.is_(None))
    ).all()
    statement = (
        sa.update(debtor)
        .where(debtor.c.id == sa.bindparam("_id"))
        .values(payment_reference=sa.bindparam("_ref"))
    )
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        connection.execute(
            statement, [{"_id": i, "_ref": rf_for(slug, ref)} for i, slug, ref in batch]
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_bank_allocation_debtor_id"), table_name="bank_allocation")
    op.drop_table("bank_allocation")
    for name in ("ix_bank_entry_waiting", "ix_bank_entry_end_to_end_id"):
        op.drop_index(name, table_name="bank_entry")
    op.drop_index(op.f("ix_bank_entry_statement_id"), table_name="bank_entry")
    op.drop_table("bank_entry")
    op.drop_table("bank_statement")
    with op.batch_alter_table("payment") as batch:
        batch.drop_column("received_on")
        batch.drop_column("payer_iban")
        batch.drop_column("method")
    op.drop_index(op.f("ix_debtor_payment_reference"), table_name="debtor")
    with op.batch_alter_table("debtor") as batch:
        batch.drop_column("payment_reference")
