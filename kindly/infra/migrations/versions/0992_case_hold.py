"""case holds: a dispute, breathing space or a manager's hold stops collection

Revision ID: 0992
Revises: 0990
"""

import sqlalchemy as sa
from alembic import op

revision = "0992"
down_revision = "0990"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("placed_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.Column("release_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_case_hold_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_case_hold_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_hold")),
    )  # fmt: skip
    op.create_index(op.f("ix_case_hold_debtor_id"), "case_hold", ["debtor_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_case_hold_debtor_id"), table_name="case_hold")
    op.drop_table("case_hold")
