"""page changes: the events that change a case notify the web processes too

Revision ID: 0995
Revises: 0994

The debtor's page shows the case's state (kindly.cases): a dispute or a manager's hold, a
plan asked for or agreed, an opt-out or opt-in change its first screen. Migration 0970's
trigger announced only `sent` and `promise` events on `kindly_pages`, so a web process that
listens (kindly.site.pagewatch) kept serving a page made before such an event for up to
PAGE_SECONDS. The trigger now names every event type `kindly.site.microsite.CASE_EVENTS`
reads (holds always come with a `hold` or `hold_released` event). SQLite has no
notifications: there every view reads the state.
"""

from alembic import op

revision = "0995"
down_revision = "0994"
branch_labels = None
depends_on = None

TYPES = (
    "sent", "promise", "plan_requested", "plan_agreed", "hold", "hold_released", "opted_out",
    "opted_in",
)  # fmt: skip
"""The event types whose rows the page's live state reads (its stamp, or the last send)."""
BEFORE = ("sent", "promise")


def _event_function(types: tuple[str, ...]) -> str:
    names = ", ".join(f"'{name}'" for name in types)
    return f"""
        CREATE OR REPLACE FUNCTION kindly_pages_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM kindly_pages_notify(
                ARRAY(SELECT DISTINCT d::bigint FROM (
                    SELECT debtor_id FROM changed WHERE type IN ({names})
                ) AS rows (d) WHERE d IS NOT NULL)
            );
            RETURN NULL;
        END $$
        """  # noqa: S608 - the type names are this module's constants


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_event_function(TYPES))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_event_function(BEFORE))
