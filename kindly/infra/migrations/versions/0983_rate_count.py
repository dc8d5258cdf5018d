"""rate-limit counters for the debtor's forms and identity check

Revision ID: 0983
Revises: 0970

One row per rule, key (an HMAC of the client address or link, never the value itself) and
fixed window; kindly.site.ratelimit counts into it when there is no Redis.
"""

import sqlalchemy as sa
from alembic import op

revision = "0983"
down_revision = "0982"  # re-chained after 0982 (scopes) so there is one head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_count",
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", "window_start", name=op.f("pk_rate_count")),
    )
    op.create_index(
        op.f("ix_rate_count_window_start"), "rate_count", ["window_start"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_count_window_start"), table_name="rate_count")
    op.drop_table("rate_count")
