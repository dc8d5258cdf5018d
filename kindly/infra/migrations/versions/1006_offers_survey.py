"""settlement offers and the one question after: write-offs, survey answers

`write_off` keeps what a settlement offer (or, later, a manager) gave up of a claim, with its
reason and the payment that took the offer; one offer write-off per case. `survey_answer`
keeps one answer per case and occasion (after paying, after agreeing a plan).

The page's live state now also reads `written_off` and `survey` events (a case settled by an
offer, the question answered): on PostgreSQL the page trigger of 0995 announces them too, so
a kept page drops the question once it is answered.

Revision ID: 1006
Revises: 1002
"""

import sqlalchemy as sa
from alembic import op

revision = "1006"
down_revision = "1007"
branch_labels = None
depends_on = None


TYPES = (
    "sent", "promise", "plan_requested", "plan_agreed", "hold", "hold_released", "opted_out",
    "opted_in", "written_off", "survey",
)  # fmt: skip
"""The event types whose rows the page's live state reads (0995's, and this revision's)."""
BEFORE = TYPES[:-2]


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
    op.create_table(
        "write_off",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("offered_minor", sa.BigInteger(), nullable=True),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_write_off_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_write_off_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_off")),
        sa.UniqueConstraint("debtor_id", "source", name=op.f("uq_write_off_debtor_id")),
    )  # fmt: skip
    op.create_table(
        "survey_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("occasion", sa.String(length=8), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE",
                                name=op.f("fk_survey_answer_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["debtor_id"], ["debtor.id"], ondelete="CASCADE",
                                name=op.f("fk_survey_answer_debtor_id_debtor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answer")),
        sa.UniqueConstraint("debtor_id", "occasion", name=op.f("uq_survey_answer_debtor_id")),
    )  # fmt: skip
    op.create_index("ix_survey_answer_campaign", "survey_answer", ["campaign_id"], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_event_function(BEFORE))
    op.drop_index("ix_survey_answer_campaign", table_name="survey_answer")
    op.drop_table("survey_answer")
    op.drop_table("write_off")
