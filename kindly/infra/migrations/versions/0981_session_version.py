"""session version: signing out, a new password or a new role ends the user's sessions

Revision ID: 0981
Revises: 0970 (and needs 0800, which made app_user)

The dashboard's session lives in a signed cookie, so the server cannot forget one. Each
cookie carries the user's session_version from sign-in; the dashboard accepts it only while
the user's row still has that number, and every event that must end the sessions (sign-out,
password change, role change, disabling) adds one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0981"
down_revision = "0980"  # re-chained after 0980 (artifact keys) so there is one head
branch_labels = None
depends_on = "0800"  # app_user


def upgrade() -> None:
    op.add_column(
        "app_user",
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("session_version")
