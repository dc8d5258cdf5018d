"""IBAN and BIC checks, and the letter options a campaign keeps in its `settings`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kindly.campaigns.logo import LOGO_KEY

# IBAN lengths of the SEPA countries (EPC409-09, the SEPA country list); a payee outside
# SEPA cannot be paid by a GiroCode, so other countries are refused rather than guessed.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "VA": 22,
}  # fmt: skip
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC_SHAPE = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")

#: The PDF variants a campaign may ask for: archival (PDF/A) or tagged for accessibility (PDF/UA).
PDF_VARIANTS = ("pdf/a-2b", "pdf/a-3b", "pdf/a-2u", "pdf/a-3u", "pdf/ua-1")
#: Every key `validate_letter_settings` knows; other parts of Kindly keep their own keys.
LETTER_KEYS = ("payee_name", "iban", "bic", "pdf_variant", "logo", "creditor_address", "contact")
PAYEE_NAME_MAX = 70  # EPC069-12: the beneficiary name has at most 70 characters


def compact(value: str) -> str:
    """An IBAN or BIC as banks store it: upper case, no blanks."""
    return re.sub(r"\s+", "", value).upper()


def iban_error(value: str) -> str | None:
    """Why `value` is not a valid SEPA IBAN, or None when it is."""
    iban = compact(value)
    if not _IBAN_SHAPE.fullmatch(iban):
        return f"IBAN {value!r} is not shaped like an IBAN (country, check digits, account)"
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is None:
        return f"IBAN {value!r}: {iban[:2]} is not a SEPA country"
    if len(iban) != expected:
        return f"IBAN {value!r} has {len(iban)} characters; {iban[:2]} IBANs have {expected}"
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        return f"IBAN {value!r} fails its checksum (a typing error?)"
    return None


def bic_error(value: str) -> str | None:
    """Why `value` is not a BIC (ISO 9362, 8 or 11 characters), or None when it is."""
    if not _BIC_SHAPE.fullmatch(compact(value)):
        return f"BIC {value!r} is not 8 or 11 letters and digits (bank, country, location)"
    return None


def format_iban(value: str) -> str:
    """An IBAN in groups of four, as it is printed for people to type."""
    iban = compact(value)
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def validate_letter_settings(settings: Mapping[str, Any]) -> list[str]:
    """Every problem with a campaign's letter options, as sentences; empty when all is well."""
    errors: list[str] = []
    for key in LETTER_KEYS:
        value = settings.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(f"{key} must be text")
    if errors:
        return errors
    iban = settings.get("iban") or ""
    payee = (settings.get("payee_name") or "").strip()
    if iban:
        if error := iban_error(iban):
            errors.append(error)
        if not payee:
            errors.append("payee_name is needed with an IBAN: the account holder banks check")
    if len(payee) > PAYEE_NAME_MAX:
        errors.append(f"payee_name has {len(payee)} characters; a transfer allows {PAYEE_NAME_MAX}")
    if settings.get("bic"):
        if error := bic_error(settings["bic"]):
            errors.append(error)
        elif not iban:
            errors.append("bic is given without an iban")
    variant = settings.get("pdf_variant") or ""
    if variant and variant not in PDF_VARIANTS:
        errors.append(f"pdf_variant {variant!r} is not one of {', '.join(PDF_VARIANTS)}")
    logo = settings.get("logo") or ""
    if logo and not LOGO_KEY.fullmatch(logo):
        # a path saved by older versions: the file is not read, the picture must be uploaded
        errors.append(
            "logo: upload the picture (PNG or JPEG) on the campaign's settings page or with "
            "`kindly letters SLUG --set logo=FILE`; a path on the server is no longer used"
        )
    return errors
