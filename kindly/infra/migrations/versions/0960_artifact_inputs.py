"""artifact inputs: a fingerprint of what an artifact was rendered from

Revision ID: 0960
Revises: 0002

`kindly render` renders only what is missing or stale: an artifact whose recorded inputs
(the debtor's view, the templates and the renderer) match today's is left alone. Rows from
before this column have none, so they count as stale once and are then recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0960"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("artifact", sa.Column("inputs", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artifact") as batch:
        batch.drop_column("inputs")
