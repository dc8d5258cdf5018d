"""`kindly doctor`: is this installation able to do its work, and if not, what to fix?"""

from __future__ import annotations

import json
import sys

import click

from kindly.doctor import ERROR, WARNING, Finding, examine, failed

MARKS = {"ok": "ok", "warning": "WARN", "error": "ERROR", "skipped": "skip"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(as_json: bool) -> None:
    """Check the libraries, fonts, ffmpeg, services, gateways, clock and modes; exit 1 on an
    error (warnings exit 0). Changes nothing: it neither migrates nor creates a bucket."""
    findings = examine()
    if as_json:
        click.echo(json.dumps(as_report(findings), indent=2, ensure_ascii=False))
    else:
        click.echo(as_text(findings))
    if failed(findings):
        sys.exit(1)


def as_report(findings: list[Finding]) -> dict:
    """The JSON report: a verdict, the counts, and every check's finding and fix."""
    errors = sum(finding.status == ERROR for finding in findings)
    warnings = sum(finding.status == WARNING for finding in findings)
    return {"ok": not errors, "errors": errors, "warnings": warnings,
            "checks": [finding.as_dict() for finding in findings]}  # fmt: skip


def as_text(findings: list[Finding]) -> str:
    """One line per check, its fix on the line below when it warns or fails, then a verdict."""
    width = max(len(finding.check) for finding in findings)
    lines = []
    for finding in findings:
        lines.append(f"{MARKS[finding.status]:>5}  {finding.check:<{width}}  {finding.finding}")
        if finding.fix and finding.status in (WARNING, ERROR):
            lines.append(f"{'':>5}  {'':<{width}}  fix: {finding.fix}")
    report = as_report(findings)
    verdict = "healthy" if report["ok"] else "not healthy"
    lines.append(f"{verdict}: {report['errors']} error(s), {report['warnings']} warning(s)")
    return "\n".join(lines)
