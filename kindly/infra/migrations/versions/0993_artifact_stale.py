"""artifact staleness: a change to what a stored page is made of marks it stale

Revision ID: 0993
Revises: 0990

A change to a campaign's rules, texts, settings or creditor marks the stored artifacts it
affects stale (`stale_at`, `stale_reason`); a stale page is never served as if current,
and a rebuild clears the mark and records when it finished (`rendered_at`). `renderer` keeps
the hash of the templates and renderer code an artifact was made with, so a deployment with
new templates shows as stale pages in the cockpit. Rows from before count as stale once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0993"
down_revision = "0992"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifact") as batch:
        batch.add_column(sa.Column("stale_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("stale_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("renderer", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artifact") as batch:
        for column in ("renderer", "rendered_at", "stale_reason", "stale_at"):
            batch.drop_column(column)
