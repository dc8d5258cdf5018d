"""The campaign report as a PDF: funnel (people and raw), money, rates, splits and KPIs.

Everything comes from `metrics.campaign_report` and `kpis.campaign_kpis`, so the PDF shows
the numbers of the campaign page and the API; WeasyPrint lays it out with the shipped fonts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign
from kindly.infra.paths import TEMPLATES
from kindly.money import from_minor
from kindly.reporting.kpis import campaign_kpis
from kindly.reporting.metrics import campaign_report
from renderer.pdf import FONT_FACES

REPORT_TEMPLATES = TEMPLATES / "report"
STEP_LABELS = {
    "sent": "Sent", "delivered": "Delivered", "opened": "Opened", "clicked": "Clicked",
    "viewed": "Viewed the page", "verified": "Passed the identity check",
    "cta": "Acted (call to action)", "payment_started": "Started a payment", "paid": "Paid",
    "plan_agreed": "Agreed a plan",
}  # fmt: skip

_env = Environment(
    loader=FileSystemLoader(REPORT_TEMPLATES), autoescape=select_autoescape(), trim_blocks=True
)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _money(minor: int | None, currency: str) -> str:
    return f"{from_minor(int(minor or 0), currency):,.{2 if currency != 'JPY' else 0}f} {currency}"


def report_context(session: Session, campaign: Campaign) -> dict[str, Any]:
    """What the template shows, already formatted."""
    report = campaign_report(session, campaign)
    top = max([row["raw"] for row in report["funnel"]] + [1])
    funnel = [
        {"step": row["step"], "label": STEP_LABELS.get(row["step"], row["step"]),
         "human": row["human"], "raw": row["raw"],
         "human_width": round(row["human"] / top * 100, 1),
         "raw_width": round(row["raw"] / top * 100, 1)}
        for row in report["funnel"]
    ]  # fmt: skip
    money = report["money"]
    currencies = [
        {"currency": c,
         "owed": _money(money["owed_minor"].get(c), c),
         "collected": _money(money["collected_minor"].get(c), c),
         "promised": _money(money["promised_minor"].get(c), c),
         "recovery": _percent(money["recovery"].get(c))}
        for c in money["currencies"]
    ]  # fmt: skip
    median = money["median_days_to_pay"]
    kpis = [
        {"name": k.name, "currency": k.currency,
         "value": "not computed" if k.value is None else f"{k.value:.1f} {k.unit}",
         "formula": k.formula, "convention": k.convention}
        for k in campaign_kpis(session, campaign)
    ]  # fmt: skip
    splits = {
        name: [
            {**row, "conversion": _percent(row["conversion"]),
             "collected": ", ".join(_money(v, c) for c, v in sorted(row["collected_minor"].items()))
             or "–"}
            for row in rows
        ]
        for name, rows in report["splits"].items()
        if rows
    }  # fmt: skip
    return {
        "campaign": campaign,
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "debtors": report["debtors"],
        "funnel": funnel,
        "currencies": currencies,
        "median_days": "–" if median is None else f"{median:.1f}",
        "paid_debtors": money["paid_debtors"],
        "rates": [
            {
                "label": r.label,
                "value": _percent(r.value),
                "numerator": r.numerator,
                "denominator": r.denominator,
                "formula": r.formula,
            }
            for r in report["rates"]
        ],
        "kpis": kpis,
        "splits": splits,
        "brand": campaign.brand_color or "#1f5f8b",
    }


def report_html(session: Session, campaign: Campaign) -> str:
    """The report as HTML (what the PDF is made of)."""
    return _env.get_template("report.html").render(**report_context(session, campaign))


def report_pdf(session: Session, campaign: Campaign) -> bytes:
    """The report as PDF bytes."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    css = FONT_FACES + "\n" + (REPORT_TEMPLATES / "report.css").read_text(encoding="utf-8")
    html = HTML(string=report_html(session, campaign), base_url=REPORT_TEMPLATES.as_uri() + "/")
    return html.write_pdf(stylesheets=[CSS(string=css, font_config=fonts)], font_config=fonts)
