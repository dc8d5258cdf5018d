"""event index by debtor, type and time

Revision ID: 0950
Revises: 0002

A page view asks for the debtor's latest `sent` and `promise` events; with an index on the
debtor alone, that read every event of the debtor (tens of thousands for a link a scanner
hammers), so a view got slower with every hit. The composite index also serves every lookup
by debtor alone, so it replaces the old one.
"""

from alembic import op

revision = "0950"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_debtor_type_at", "event", ["debtor_id", "type", "occurred_at"])
    op.drop_index("ix_event_debtor", table_name="event")


def downgrade() -> None:
    op.create_index("ix_event_debtor", "event", ["debtor_id"])
    op.drop_index("ix_event_debtor_type_at", table_name="event")
