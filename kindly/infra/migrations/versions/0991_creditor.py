"""creditor profiles: name, address, contact, bank account, authority, logo and colour

Revision ID: 0991
Revises: 0990

One row per creditor name (the name a debtor's or campaign's `creditor` column holds);
kindly.creditors resolves each debtor's letter, page, messages and webhooks from it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0991"
down_revision = "0993"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "creditor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_form", sa.String(length=60), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("email_sender_name", sa.String(length=200), nullable=False),
        sa.Column("email_address", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("payee_name", sa.String(length=70), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("supervisory_authority", sa.String(length=300), nullable=False),
        sa.Column("logo", sa.String(length=200), nullable=False),
        sa.Column("brand_color", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creditor")),
        sa.UniqueConstraint("name", name=op.f("uq_creditor_name")),
    )


def downgrade() -> None:
    op.drop_table("creditor")
