"""`kindly segments`: how many debtors fall into each segment and variant, before sending."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.cli.common import campaign_by_slug, open_context
from kindly.rules.document import Rules
from kindly.rules.evaluate import evaluate, facts
from kindly.rules.history import past_behaviour, past_of
from kindly.rules.store import current_rules
from kindly.rules.validate import parse_rules


def preview(debtors: list[Debtor], rules: Rules, today: dt.date, history: dict[int, dict]) -> dict:
    """Counts per (segment, variant), and each group's treatment (tone, channels) apart,
    so the `segments` rows keep their documented shape; nothing is stored.

    `history` is the debtors' `past_behaviour`, fetched once for the whole campaign."""
    groups: dict[tuple[str, str], dict] = {}
    seen_facts: set[str] = set()
    for debtor in debtors:
        past = past_of(history, debtor)
        treatment = evaluate(debtor, rules, today, past=past)
        key = (treatment.segment, treatment.variant)
        group = groups.setdefault(key, {
            "segment": treatment.segment, "variant": treatment.variant, "debtors": 0,
            "tone": treatment.tone, "channels": treatment.channels,
            "experiment": treatment.experiment,
        })  # fmt: skip
        group["debtors"] += 1
        values = facts(debtor, rules, today, past)
        seen_facts |= {k for k, v in values.items() if v not in (None, "")}
    used = {fact for segment in rules.segments for fact in segment["when"]}
    warnings = [
        f"no debtor has a value for {fact!r}: the conditions on it never match"
        for fact in sorted(used - seen_facts)
    ]
    return {
        "rule_version": rules.version,
        "total": len(debtors),
        "segments": [
            {"segment": s, "variant": v, "debtors": groups[s, v]["debtors"]}
            for s, v in sorted(groups)
        ],
        "treatments": [
            {k: val for k, val in groups[key].items() if k != "debtors"} for key in sorted(groups)
        ],
        "warnings": warnings if debtors else [],
    }


@click.command("segments")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Preview an unsaved rules document instead of the campaign's.",
)
@click.option("--at", "on", type=click.DateTime(["%Y-%m-%d"]), help="Evaluate as of this date.")
def command(slug: str, as_json: bool, rules_file: Path | None, on) -> None:
    """How many debtors fall into each segment and variant under the rules."""
    ctx = open_context()
    today = on.date() if on else dt.date.today()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        rules = (
            parse_rules(rules_file.read_bytes()) if rules_file else current_rules(session, campaign)
        )
        debtors = list(
            session.scalars(
                select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
            )
        )
        history = past_behaviour(session, campaign.id)
        data = {"campaign": slug, **preview(debtors, rules, today, history)}
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    source = rules_file.name if rules_file else f"rules version {data['rule_version']}"
    click.echo(f"campaign {slug}: {data['total']} debtors ({source})")
    click.echo(f"  {'segment':<20} {'variant':<10} {'debtors':>8}  tone      channels")
    for row, treatment in zip(data["segments"], data["treatments"], strict=True):
        click.echo(
            f"  {row['segment']:<20} {row['variant']:<10} {row['debtors']:>8}  "
            f"{treatment['tone']:<9} {' > '.join(treatment['channels'])}"
        )
    for warning in data["warnings"]:
        click.echo(f"warning: {warning}", err=True)
