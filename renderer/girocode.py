"""EPC069-12 "GiroCode" payloads: the QR code a banking app scans to prefill a SEPA transfer."""

from __future__ import annotations

import re

import segno
from stdnum import iso11649

NAME_MAX = 70
REMITTANCE_MAX = 140
REFERENCE_MAX = 35  # the structured creditor reference field
PAYLOAD_MAX_BYTES = 331  # EPC069-12: the whole payload, UTF-8 encoded
AMOUNT_MAX_CENTS = 99_999_999_999  # EUR 999,999,999.99
_BLANKS = re.compile(r"\s+")


def _line(value: str, limit: int) -> str:
    """One payload field: a single line of at most `limit` characters."""
    return _BLANKS.sub(" ", value).strip()[:limit]


def epc_payload(*, name: str, iban: str, amount_cents: int, remittance: str, bic: str = "") -> str:
    """The text of an EPC QR code for a SEPA credit transfer in euro (version 002, UTF-8).

    EPC069-12 has two remittance fields, of which a code fills one: a valid ISO 11649 creditor
    reference ('RF…', any spacing) goes compact into the structured field (AT-05 structured,
    the tenth line), which the payer's bank passes on as `CdtrRefInf` for the creditor's
    statement to be matched by; any other text goes into the unstructured field (the
    eleventh line). The purpose field stays empty.
    """
    if not 1 <= amount_cents <= AMOUNT_MAX_CENTS:
        raise ValueError(
            f"a GiroCode amount must be EUR 0.01 to 999,999,999.99, not {amount_cents}"
        )
    euros, cents = divmod(amount_cents, 100)
    structured = structured_reference(remittance)
    lines = [
        "BCD",  # service tag
        "002",  # version: the BIC is optional within the EEA
        "1",  # character set: UTF-8
        "SCT",  # SEPA credit transfer
        re.sub(r"\s+", "", bic).upper(),
        _line(name, NAME_MAX),
        re.sub(r"\s+", "", iban).upper(),
        f"EUR{euros}.{cents:02d}",
        "",  # purpose code
        structured,  # structured creditor reference (ISO 11649)
        "" if structured else _line(remittance, REMITTANCE_MAX),
    ]
    payload = "\n".join(lines)
    if len(payload.encode("utf-8")) > PAYLOAD_MAX_BYTES:
        raise ValueError("the GiroCode payload is longer than EPC069-12 allows")
    return payload


def structured_reference(text: str) -> str:
    """`text` as a compact ISO 11649 reference when it is a valid one, else ""."""
    compact = re.sub(r"[\s-]", "", text or "").upper()
    if compact.startswith("RF") and len(compact) <= REFERENCE_MAX and iso11649.is_valid(compact):
        return compact
    return ""


def epc_qr(payload: str) -> segno.QRCode:
    """The payload as a QR code: error level M, at most version 13, as EPC069-12 asks."""
    code = segno.make(payload, error="m", boost_error=False, micro=False, encoding="utf-8")
    if code.version > 13:
        raise ValueError(f"a GiroCode needs QR version 13 or lower, not {code.version}")
    return code
