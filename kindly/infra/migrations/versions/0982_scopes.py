"""scopes: a user and an API key may be limited to some creditors and campaigns

Revision ID: 0982
Revises: 0970; depends on 0800 (app_user, api_token)

NULL means every campaign (what every user and key had before); a JSON object
{"creditors": [...], "campaigns": [...]} limits the principal to campaigns whose creditor
or slug is listed (kindly.accounts.scopes).
"""

import sqlalchemy as sa
from alembic import op

revision = "0982"
down_revision = "0981"  # re-chained after 0981 (sessions) so there is one head
branch_labels = None
depends_on = "0800"  # app_user and api_token


def upgrade() -> None:
    op.add_column("app_user", sa.Column("scope", sa.JSON(), nullable=True))
    op.add_column("api_token", sa.Column("scope", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("scope")
