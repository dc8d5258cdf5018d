"""Scopes on PostgreSQL: the migration keeps existing users and keys reaching every campaign,
and the scope's SQL condition lists and finds exactly the campaigns a key reaches."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from kindly.accounts import users
from kindly.accounts.scopes import Scope
from kindly.campaigns.models import Campaign
from kindly.infra.db import MIGRATIONS
from tests.support.app import front_client, installed, load_campaign, make_settings

PASSWORD = "correct horse battery staple"


def _alembic(ctx, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with ctx.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config, revision)


def test_existing_keys_keep_every_campaign_and_a_scoped_key_sees_one(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        for slug in ("alpha", "beta"):
            load_campaign(ctx, slug)
        with ctx.db.session() as session:
            old = users.create_user(session, "old@example.org", PASSWORD, "viewer")
            _, everything = users.issue_token(session, old, "crm")
        _alembic(ctx, command.downgrade, "0970")  # the schema before scopes, with a user and key
        with ctx.db.engine.begin() as conn:
            columns = conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_name='app_user'"
            )).scalars().all()  # fmt: skip
        assert "scope" not in columns
        _alembic(ctx, command.upgrade, "heads")
        with ctx.db.session() as session:
            session.scalar(select(Campaign).where(Campaign.slug == "alpha")).creditor = "Alpha AG"
            scoped = users.create_user(session, "a@example.org", PASSWORD, "manager",
                                       Scope(creditors=frozenset({"Alpha AG"})))  # fmt: skip
            _, alpha_only = users.issue_token(session, scoped, "crm")
        client = front_client(ctx)

        def slugs(secret: str) -> list[str]:
            answer = client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {secret}"})
            return [c["slug"] for c in answer.get_json()["campaigns"]]

        assert slugs(everything) == ["alpha", "beta"]
        assert slugs(alpha_only) == ["alpha"]
        beta = client.get("/api/v1/campaigns/beta/events",
                          headers={"Authorization": f"Bearer {alpha_only}"})  # fmt: skip
        assert beta.status_code == 404
