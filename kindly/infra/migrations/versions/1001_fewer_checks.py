"""fewer checks per payment and event: the campaign key dropped where the debtor's carries it,
and the payment's optional references indexed only where set

A payment and an event always belong to a debtor, whose foreign key already cascades when the
campaign goes (campaign → debtor → payment/event) and already locks the debtor row against a
concurrent erasure. The second key on `campaign_id` checked the campaign once more per row
(as a query of its own inside the server: about a fifth of what a bulk bank import cost
PostgreSQL) and guarded nothing the first does not. Likewise most payments have no
`intent_ref` and no `instalment_id`: their index entries for NULL were written and never read.

PostgreSQL only: SQLite (the embedded demo database) keeps its tables as they are, where a
key check costs next to nothing and recreating the event table would not be worth it.

Revision ID: 1001
Revises: 0999
"""

from alembic import op

revision = "1001"
down_revision = "0999"
branch_labels = None
depends_on = None

PARTIAL = (("ix_payment_intent_ref", "intent_ref"), ("ix_payment_instalment_id", "instalment_id"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("fk_payment_campaign_id_campaign", "payment", type_="foreignkey")
    op.drop_constraint("fk_event_campaign_id_campaign", "event", type_="foreignkey")
    for name, column in PARTIAL:
        op.drop_index(name, table_name="payment")
        op.create_index(name, "payment", [column], postgresql_where=f"{column} IS NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column in PARTIAL:
        op.drop_index(name, table_name="payment")
        op.create_index(name, "payment", [column])
    for table in ("event", "payment"):
        op.create_foreign_key(
            f"fk_{table}_campaign_id_campaign", table, "campaign", ["campaign_id"], ["id"],
            ondelete="CASCADE",
        )  # fmt: skip
