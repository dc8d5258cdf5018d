"""the base-rate table kindly rates update loads (interest that accrues, issue 19)

Empty until an operator loads a table: Kindly then uses the one it ships
(kindly/claims/base_rates.csv).

Revision ID: 1004
Revises: 1002
"""

import sqlalchemy as sa
from alembic import op

revision = "1004"
down_revision = "1006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_rate",
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("valid_from", name=op.f("pk_base_rate")),
    )


def downgrade() -> None:
    op.drop_table("base_rate")
