"""The launch check catches a template that drops a fact a collection demand must carry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kindly import launch
from tests.support.app import PORTFOLIO


def test_todays_templates_carry_every_fact_in_every_language_and_tone():
    assert launch.check_templates() == []


def test_a_template_that_drops_the_claim_basis_is_named_by_language_and_tone(monkeypatch):
    import renderer.site as site

    original = site.render_site

    def without_contract(view, **kw):
        return original(view, **kw).replace(view.contract.encode(), b"")

    monkeypatch.setattr(site, "render_site", without_contract)
    gaps = launch.check_templates()
    assert len(gaps) == 15  # 5 languages × 3 tones
    assert launch.Gap("microsite", "it", "firm", "claim basis") in gaps
    assert {g.template for g in gaps} == {"microsite"}


def test_an_email_without_its_one_click_opt_out_is_caught(monkeypatch):
    import kindly.messaging.email as email

    original = email.compose_email

    def without_one_click(*args, **kw):
        message = original(*args, **kw)
        del message["List-Unsubscribe-Post"]
        return message

    monkeypatch.setattr(email, "compose_email", without_one_click)
    gaps = launch.check_templates()
    assert [g for g in gaps if g.template != "email"] == []
    assert len(gaps) == 15
    assert launch.Gap("email", "fr", "friendly", "opt-out (one-click header and link)") in gaps


def test_kindly_check_exits_1_and_lists_the_campaigns_gaps(tmp_path):
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    env = {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }  # a worktree runs its own code
    run = lambda *a: subprocess.run([sys.executable, "-m", "kindly", *a], capture_output=True,  # noqa: E731
                                    text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert run("import", str(portfolio), "--campaign", "winter", "--create").returncode == 0
    result = run("check", "winter", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ready"] is False
    # three creditors in the portfolio, none with a profile: each is named with what it lacks
    assert {(g["template"], g["missing"].split(" (")[0]) for g in report["gaps"]} == {
        (f"creditor {name}", fact)
        for name in ("Stadtwerke Beispielstadt GmbH", "Northern Water Ltd", "Acqua Roma S.p.A.")
        for fact in ("creditor address", "whom to contact: phone or email",
                     "IBAN for letters and bank transfers")
    }  # fmt: skip
