"""Paying by bank transfer: the account, the reference and a GiroCode, for the web pages."""

from __future__ import annotations

import re
from dataclasses import dataclass

from renderer.girocode import epc_payload, epc_qr
from renderer.view import DebtorView


@dataclass(frozen=True)
class Transfer:
    """What a debtor types into (or scans with) a banking app; strings are plain text."""

    payee: str  # empty when the campaign has no account configured
    iban: str  # in blocks of four
    bic: str
    reference: str  # the payment reference in groups of four (or the case's own reference)
    amount: str  # formatted for the debtor's locale
    giro_svg: str  # a data: URI of the GiroCode, or "" (euro claims with an IBAN only)


def group_iban(iban: str) -> str:
    """An IBAN in blocks of four, as people read it off a screen."""
    compact = re.sub(r"\s+", "", iban).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def bank_transfer(view: DebtorView, amount_minor: int, amount: str) -> Transfer:
    """The transfer of `amount_minor` (formatted: `amount`) for this debtor's claim."""
    reference = view.payment_reference or view.reference
    giro = ""
    if view.currency == "EUR" and view.iban and view.payee_name and amount_minor > 0:
        payload = epc_payload(name=view.payee_name, iban=view.iban, bic=view.bic,
                              amount_cents=amount_minor, remittance=reference)  # fmt: skip
        giro = epc_qr(payload).svg_data_uri(scale=4, border=4)
    return Transfer(
        payee=view.payee_name if view.iban else "",
        iban=group_iban(view.iban),
        bic=view.bic,
        reference=reference,
        amount=amount,
        giro_svg=giro,
    )
