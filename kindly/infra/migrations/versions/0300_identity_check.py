"""identity check attempts and locks

Revision ID: 0300
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0300"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_check",
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total_failures", sa.Integer(), nullable=False),
        sa.Column("locks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtor.id"],
            name=op.f("fk_identity_check_debtor_id_debtor"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("debtor_id", name=op.f("pk_identity_check")),
    )


def downgrade() -> None:
    op.drop_table("identity_check")
