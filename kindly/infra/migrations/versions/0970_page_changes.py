"""page changes: PostgreSQL tells the web processes which debtors' pages changed

Revision ID: 0970
Revises: 0600, 0700 (whose tables it watches)

A web process keeps each microsite page it served with the live state it was built from
(kindly.site.microsite). These statement-level triggers send a notification on the channel
`kindly_pages` whenever a row the live state is made of changes, so a process that listens can
serve its kept page without reading the database on every view (kindly.site.pagewatch).
The payload names the debtors (`d12,13`), the campaigns (`c4`), or all pages (`*`) when one
statement touched more than PAGE_IDS debtors (an import). PostgreSQL sends it at commit.

The tables are the ones `microsite._statement` reads: debtor, campaign, decision, artifact,
payment, payment_plan, instalment, and the `sent` and `promise` events. SQLite has no
notifications: there every view reads the state, as before.
"""

from alembic import op

revision = "0970"
down_revision = ("0600", "0700")  # payment_plan and instalment; decision
branch_labels = None
depends_on = None

PAGE_IDS = 500
"""More debtors than this in one statement notify `*` (the payload must stay under 8,000
bytes)."""

DEBTORS = {
    # table: the debtors its changed rows belong to ("changed" is the transition table)
    "debtor": "SELECT id FROM changed",
    "decision": "SELECT debtor_id FROM changed",
    "artifact": "SELECT debtor_id FROM changed",
    "payment": "SELECT debtor_id FROM changed",
    "payment_plan": "SELECT debtor_id FROM changed",
    "instalment": "SELECT p.debtor_id FROM changed c JOIN payment_plan p ON p.id = c.plan_id",
    "event": "SELECT debtor_id FROM changed WHERE type IN ('sent', 'promise')",
}
OPERATIONS = {
    "debtor": ("UPDATE", "DELETE"),  # a new debtor has no page yet
    "event": ("INSERT", "DELETE"),  # events are never updated
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION kindly_pages_notify(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF ids IS NULL OR cardinality(ids) = 0 THEN
                RETURN;
            END IF;
            IF cardinality(ids) > {PAGE_IDS} THEN
                PERFORM pg_notify('kindly_pages', '*');
            ELSE
                PERFORM pg_notify('kindly_pages', 'd' || array_to_string(ids, ','));
            END IF;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION kindly_pages_campaign() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('kindly_pages', 'c' || string_agg(DISTINCT id::text, ','))
            FROM changed HAVING count(*) > 0;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER kindly_pages_campaign_update AFTER UPDATE ON campaign"
        " REFERENCING NEW TABLE AS changed FOR EACH STATEMENT"
        " EXECUTE FUNCTION kindly_pages_campaign()"
    )
    for table, query in DEBTORS.items():
        op.execute(
            f"""
            CREATE FUNCTION kindly_pages_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM kindly_pages_notify(
                    ARRAY(SELECT DISTINCT d::bigint FROM ({query}) AS rows (d) WHERE d IS NOT NULL)
                );
                RETURN NULL;
            END $$
            """  # noqa: S608 - the table names and queries are this module's constants
        )
        for operation in OPERATIONS.get(table, ("INSERT", "UPDATE", "DELETE")):
            rows = "OLD" if operation == "DELETE" else "NEW"
            op.execute(
                f"CREATE TRIGGER kindly_pages_{table}_{operation.lower()}"
                f" AFTER {operation} ON {table} REFERENCING {rows} TABLE AS changed"
                f" FOR EACH STATEMENT EXECUTE FUNCTION kindly_pages_{table}()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS kindly_pages_campaign_update ON campaign")
    op.execute("DROP FUNCTION IF EXISTS kindly_pages_campaign()")
    for table in DEBTORS:
        for operation in OPERATIONS.get(table, ("INSERT", "UPDATE", "DELETE")):
            name = f"kindly_pages_{table}_{operation.lower()}"
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS kindly_pages_{table}()")
    op.execute("DROP FUNCTION IF EXISTS kindly_pages_notify(bigint[])")
