"""`kindly experiments`: each variant's rate, its difference to control, and how sure we are."""

from __future__ import annotations

import json

import click

from kindly.cli.common import campaign_by_slug, open_context
from kindly.rules.document import GOALS
from kindly.rules.experiments import report
from kindly.rules.store import current_rules


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


@click.command("experiments")
@click.argument("slug")
@click.option("--goal", type=click.Choice(GOALS), help="Override each experiment's goal.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(slug: str, goal: str | None, as_json: bool) -> None:
    """Statistics per experiment and variant (Wilson intervals, z-test, Holm, chance to beat),
    over the debtors exposed to their variant and the outcomes after each one's exposure."""
    ctx = open_context()
    with ctx.db.session() as session:
        campaign = campaign_by_slug(session, slug)
        data = report(session, campaign, current_rules(session, campaign), goal=goal)
    if as_json:
        click.echo(json.dumps({"campaign": slug, "experiments": data}, indent=2))
        return
    if not data:
        click.echo(f"{slug}: no experiments in the rules in force")
    for experiment in data:
        click.echo(
            f"{experiment['experiment']} (goal: {experiment['goal']}, "
            f"rules v{experiment['rule_version']}, since {experiment['started_at']})"
        )
        click.echo("  variant      reached/exposed    rate [95% CI]  (assigned)")
        for row in experiment["variants"]:
            lo, hi = row["rate_ci"]
            line = (f"  {row['variant']:<12} {row['conversions']:>7}/{row['exposed']:<7} "
                    f"{_pct(row['rate']):>7} [{_pct(lo)}, {_pct(hi)}]  "
                    f"({row['assigned']})")  # fmt: skip
            if "difference" in row:
                d_lo, d_hi = row["difference_ci"]
                line += (f"  Δ {100 * row['difference']:+.1f} pts [{100 * d_lo:+.1f}, "
                         f"{100 * d_hi:+.1f}]  p={row['p_value']:.3g} (Holm {row['p_holm']:.3g})"
                         f"  P(beats control)={row['chance_to_beat']:.2f}")  # fmt: skip
            elif row["control"]:
                line += "  control"
            click.echo(line)
        srm = experiment["sample_ratio"]
        if srm and srm["mismatch"]:
            click.echo(
                f"  warning: sample-ratio mismatch (χ²={srm['chi2']:.1f}, "
                f"p={srm['p_value']:.2g}): the groups are not the sizes configured"
            )
