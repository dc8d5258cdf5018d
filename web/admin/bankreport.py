"""A bank statement's report in the cockpit: its entries and amounts by outcome and by the rule
that matched them, and what reached cases, for the creditor's books.

Statements belong to no campaign (they are matched against all), so like the statement list
on the bank page the report is for users whose scope reaches every campaign.
"""

from __future__ import annotations

from flask import abort, g, render_template

from kindly.accounts import scopes
from kindly.reporting import bank
from web.admin.common import bp
from web.context import context

RULE_NAMES = {
    "rf": "RF payment reference",
    "reference": "case reference in the text",
    "iban": "payer's account paid before",
    "name_amount": "name and amount",
    "manual": "assigned by a manager",
    "split": "split by a manager",
    "return": "return of a transfer",
}
STATE_NAMES = {
    "matched": "Matched to cases",
    "unmatched": "Waiting for a decision",
    "ignored": "Ignored (not money in: debits, fees, pending)",
    "not_ours": "Not ours",
    "returned": "Returns",
}


@bp.get("/bank/statements/<int:statement_id>")
def bank_statement_report(statement_id: int):
    """One statement's numbers: matched by rule, unmatched, ignored, amounts, booked."""
    if scopes.access_of(g.user):
        abort(403)
    with context().db.session() as db:
        try:
            statement = bank.statement_or_fail(db, statement_id)
        except bank.ReportError:
            abort(404)
        report = bank.report(db, statement)
    return render_template("admin/bank_report.html", r=report, rule_names=RULE_NAMES,
                           state_names=STATE_NAMES)  # fmt: skip
