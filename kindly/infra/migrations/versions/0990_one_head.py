"""one head: the per-team branches of the history join here

Revision ID: 0990
Revises: 0300, 0900, 0950, 0960, 0983

The identity check (0300), outgoing webhooks (0900), event types (0950), artifact inputs (0960)
and the security chain (0970-0983) grew as separate branches from 0002. This revision changes
nothing in the schema; from here on the history is one line and `alembic upgrade head` names
one revision.
"""

revision = "0990"
down_revision = ("0300", "0900", "0950", "0960", "0983")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches only meet."""


def downgrade() -> None:
    """Nothing to change: the branches part again."""
