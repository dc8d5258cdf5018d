"""`kindly render` renders only what is missing or stale: a re-run leaves current letters alone,
a payment or a template change makes them stale, and --force renders everything."""

from __future__ import annotations

import subprocess

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.payments.models import Payment
from kindly.site import artifacts
from kindly.site.models import Artifact
from tests.support.app import load_campaign
from workers.jobs import render_debtor


def stored_letter(ctx, reference: str) -> tuple[str, int]:
    """The stored letter's sha256 and the file's modification time."""
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
        artifact = artifacts.find(session, debtor, "letter")
        path = ctx.storage.local_path(artifact.key)
        return artifact.sha256, path.stat().st_mtime_ns


def letter_text(ctx, reference: str) -> str:
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
        path = ctx.storage.local_path(artifacts.find(session, debtor, "letter").key)
    return subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_a_current_letter_is_left_alone_and_a_payment_makes_it_stale(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        debtor_id, campaign_id = debtor.id, debtor.campaign_id
    first = render_debtor(debtor_id, ["site", "letter"])
    assert "letter" in first
    before = stored_letter(ctx, "A-1")

    again = render_debtor(debtor_id, ["site", "letter"])  # nothing changed: not rendered
    assert "letter" not in again
    assert stored_letter(ctx, "A-1") == before

    forced = render_debtor(debtor_id, ["letter"], force=True)
    assert "letter" in forced

    with ctx.db.session() as session:  # a part payment: the letter must show what is left
        session.add(Payment(campaign_id=campaign_id, debtor_id=debtor_id, provider="sandbox",
                            provider_ref="sbx_stale_test_0001", amount_minor=23456,
                            currency="EUR", status="succeeded"))  # fmt: skip
    after_payment = render_debtor(debtor_id, ["site", "letter"])
    assert "letter" in after_payment
    assert stored_letter(ctx, "A-1")[0] != before[0]
    assert "1.000,00" in letter_text(ctx, "A-1")


def test_a_changed_template_makes_every_letter_stale(ctx, monkeypatch):
    load_campaign(ctx)
    with ctx.db.session() as session:
        ids = list(session.scalars(select(Debtor.id).order_by(Debtor.id)))
    for debtor_id in ids:
        render_debtor(debtor_id, ["letter"])
    assert all("letter" not in render_debtor(i, ["letter"]) for i in ids)

    artifacts.renderer_version.cache_clear()
    monkeypatch.setattr(artifacts, "renderer_version", lambda kind: f"edited-{kind}")
    assert all("letter" in render_debtor(i, ["letter"]) for i in ids)
    with ctx.db.session() as session:
        recorded = set(session.scalars(select(Artifact.inputs).where(Artifact.kind == "letter")))
    assert None not in recorded and len(recorded) == len(ids)
