"""rules: rule sets, decisions, sends, opt-outs

Revision ID: 0700
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0700"
down_revision = "0002"
branch_labels = None
depends_on = None


def _campaign_fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["campaign_id"], ["campaign.id"], name=op.f(f"fk_{table}_campaign_id_campaign"),
        ondelete=ondelete,
    )  # fmt: skip


def _debtor_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["debtor_id"], ["debtor.id"], name=op.f(f"fk_{table}_debtor_id_debtor"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "rule_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _campaign_fk("rule_set"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_set")),
        sa.UniqueConstraint("campaign_id", "version", name=op.f("uq_rule_set_campaign_id")),
    )
    op.create_table(
        "decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("experiment", sa.String(length=64), nullable=True),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("tone", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("treatment", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _campaign_fk("decision"),
        _debtor_fk("decision"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision")),
        sa.UniqueConstraint("debtor_id", "rule_version", name=op.f("uq_decision_debtor_id")),
    )
    op.create_index("ix_decision_campaign_version", "decision", ["campaign_id", "rule_version"])
    op.create_table(
        "send",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _campaign_fk("send"),
        _debtor_fk("send"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send")),
        sa.UniqueConstraint("debtor_id", "step", "channel", name=op.f("uq_send_debtor_id")),
    )
    op.create_index("ix_send_campaign_status", "send", ["campaign_id", "status"])
    op.create_table(
        "opt_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _campaign_fk("opt_out", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_out")),
        sa.UniqueConstraint("address", "channel", name=op.f("uq_opt_out_address")),
    )


def downgrade() -> None:
    op.drop_table("opt_out")
    op.drop_index("ix_send_campaign_status", table_name="send")
    op.drop_table("send")
    op.drop_index("ix_decision_campaign_version", table_name="decision")
    op.drop_table("decision")
    op.drop_table("rule_set")
