"""Real bank statement files built from a list of payments: camt.053 (v02, v08), camt.054 (with
batch-booked entries) and MT940 with German `:86:` subfields.

The element order follows the ISO 20022 schemas of each version (ReportEntry2/10,
EntryTransaction2/10, TransactionParties2/6, ...), so a bank's validator would read them too.

    payments = [Payment("Erika Mustermann", "DE02120300000000202051", "57.30",
                        remittance="Rechnung 4711", reference="RF18539007547034")]
    data = camt053(payments, version="08")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

ACCOUNT = "DE89370400440532013000"
BOOKED = date(2026, 12, 1)
NS = "urn:iso:std:iso:20022:tech:xsd:{kind}.001.{version}"


@dataclass(frozen=True)
class Payment:
    """One movement to put on a statement; `reference` is the RF creditor reference."""

    name: str
    iban: str
    amount: str | Decimal
    currency: str = "EUR"
    remittance: str = ""
    reference: str | None = None
    credit: bool = True
    status: str = "BOOK"
    end_to_end: str | None = None
    bank_ref: str | None = None
    bic: str | None = "COBADEFFXXX"
    return_reason: str | None = None  # a return of an earlier payment, with its reason code
    booked: date = BOOKED


def payments(rows: Iterable[Payment | Sequence]) -> list[Payment]:
    """Payments from Payment objects or (name, iban, amount, currency, remittance, reference)."""
    return [row if isinstance(row, Payment) else Payment(*row) for row in rows]


# --------------------------------------------------------------------------- camt


def camt053(
    rows: Iterable[Payment | Sequence],
    version: str = "08",
    account: str = ACCOUNT,
    statement_id: str = "STMT-2026-12-01",
) -> bytes:
    """A camt.053 statement: one Ntry per payment, each with one TxDtls."""
    items = payments(rows)
    entries = "".join(_entry([p], version, i, True) for i, p in enumerate(items, 1))
    body = (
        f"<Stmt><Id>{escape(statement_id)}</Id><ElctrncSeqNb>1</ElctrncSeqNb>"
        f"<CreDtTm>2026-12-01T18:00:00+01:00</CreDtTm>{_account(account)}"
        f"{_balance('OPBD', '1000.00')}{_balance('CLBD', '1000.00')}{entries}</Stmt>"
    )
    return _document("camt.053", version, "BkToCstmrStmt", body)


def camt054(
    groups: Iterable[Payment | Sequence[Payment]],
    version: str = "08",
    account: str = ACCOUNT,
    notification_id: str = "NTFCTN-2026-12-01",
    tx_amounts: bool = True,
) -> bytes:
    """A camt.054 notification: a Payment is one entry, a list of them one batch-booked entry
    whose TxDtls carry each amount (or none, with tx_amounts=False)."""
    entries = []
    for index, group in enumerate(groups, 1):
        batch = [group] if isinstance(group, Payment) else payments(group)
        entries.append(_entry(batch, version, index, tx_amounts or len(batch) == 1))
    body = (
        f"<Ntfctn><Id>{escape(notification_id)}</Id>"
        f"<CreDtTm>2026-12-01T18:00:00+01:00</CreDtTm>{_account(account)}"
        f"{''.join(entries)}</Ntfctn>"
    )
    return _document("camt.054", version, "BkToCstmrDbtCdtNtfctn", body)


def _document(kind: str, version: str, message: str, body: str) -> bytes:
    namespace = NS.format(kind=kind, version=version)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{namespace}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<{message}><GrpHdr><MsgId>MSG-{kind}-{version}</MsgId>"
        f"<CreDtTm>2026-12-01T18:00:00+01:00</CreDtTm></GrpHdr>{body}</{message}></Document>\n"
    ).encode()


def _account(iban: str) -> str:
    return f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>"


def _balance(code: str, amount: str) -> str:
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        f"<Dt><Dt>{BOOKED.isoformat()}</Dt></Dt></Bal>"
    )


def _amount(payment: Payment, element: str = "Amt") -> str:
    return f"<{element} Ccy={quoteattr(payment.currency)}>{payment.amount}</{element}>"


def _side(payment: Payment) -> str:
    return "CRDT" if payment.credit else "DBIT"


def _code(payment: Payment) -> str:
    family, sub = ("RCDT", "ESCT") if payment.credit else ("ICDT", "ESCT")
    if payment.return_reason:
        family, sub = "RCDT", "RRTN"
    return (
        f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub}</SubFmlyCd>"
        f"</Fmly></Domn></BkTxCd>"
    )


def _entry(batch: list[Payment], version: str, index: int, tx_amounts: bool) -> str:
    first = batch[0]
    total = sum(Decimal(str(p.amount)) * (1 if p.credit else -1) for p in batch)
    status = first.status if version == "02" else f"<Cd>{first.status}</Cd>"
    reference = first.bank_ref if len(batch) == 1 else f"BATCH-{index:06d}"
    booked = f"<BookgDt><Dt>{first.booked.isoformat()}</Dt></BookgDt>"
    details = "".join(_transaction(p, version, tx_amounts) for p in batch)
    batch_info = f"<Btch><NbOfTxs>{len(batch)}</NbOfTxs></Btch>" if len(batch) > 1 else ""
    return (
        f"<Ntry><NtryRef>{index}</NtryRef>"
        f"<Amt Ccy={quoteattr(first.currency)}>{abs(total)}</Amt>"
        f"<CdtDbtInd>{'CRDT' if total >= 0 else 'DBIT'}</CdtDbtInd>"
        f"<Sts>{status}</Sts>{booked}<ValDt><Dt>{first.booked.isoformat()}</Dt></ValDt>"
        + (f"<AcctSvcrRef>{escape(reference)}</AcctSvcrRef>" if reference else "")
        + _code(first)
        + f"<NtryDtls>{batch_info}{details}</NtryDtls></Ntry>"
    )


def _transaction(payment: Payment, version: str, with_amount: bool) -> str:
    refs = "<Refs>"
    if payment.bank_ref:
        refs += f"<AcctSvcrRef>{escape(payment.bank_ref)}</AcctSvcrRef>"
    refs += f"<EndToEndId>{escape(payment.end_to_end or 'NOTPROVIDED')}</EndToEndId></Refs>"
    amount = ""
    if with_amount:
        if version == "02":
            amount = f"<AmtDtls><TxAmt>{_amount(payment)}</TxAmt></AmtDtls>"
        else:
            amount = f"{_amount(payment)}<CdtDbtInd>{_side(payment)}</CdtDbtInd>"
    party = "Dbtr" if payment.credit else "Cdtr"
    name = f"<Nm>{escape(payment.name)}</Nm>"
    name = name if version in ("02", "03", "04", "05", "06") else f"<Pty>{name}</Pty>"
    parties = (
        f"<RltdPties><{party}>{name}</{party}>"
        f"<{party}Acct><Id><IBAN>{payment.iban}</IBAN></Id></{party}Acct></RltdPties>"
    )
    agents = ""
    if payment.bic:
        bic = "BIC" if version == "02" else "BICFI"
        agents = (
            f"<RltdAgts><{party}Agt><FinInstnId><{bic}>{payment.bic}</{bic}>"
            f"</FinInstnId></{party}Agt></RltdAgts>"
        )
    remittance = ""
    if payment.remittance or payment.reference:
        remittance = "<RmtInf>"
        if payment.remittance:
            remittance += f"<Ustrd>{escape(payment.remittance)}</Ustrd>"
        if payment.reference:
            remittance += (
                "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr>"
                f"</Tp><Ref>{escape(payment.reference)}</Ref></CdtrRefInf></Strd>"
            )
        remittance += "</RmtInf>"
    returned = ""
    if payment.return_reason:
        returned = f"<RtrInf><Rsn><Cd>{payment.return_reason}</Cd></Rsn></RtrInf>"
    return f"<TxDtls>{refs}{amount}{_code(payment)}{parties}{agents}{remittance}{returned}</TxDtls>"


# --------------------------------------------------------------------------- MT940


def mt940(
    rows: Iterable[Payment | Sequence],
    account: str = ACCOUNT,
    statement_id: str = "STARTUMS",
) -> bytes:
    """An MT940 statement as German banks write it: structured `:86:` with ?00 posting text,
    ?20–?29 remittance in 27-character lines starting with EREF+ and SVWZ+, ?30 BIC, ?31 IBAN,
    ?32–?33 name, and for a return the reversal mark RC, GVC 159 and ?34 reason."""
    items = payments(rows)
    lines = [
        f":20:{statement_id}",
        f":25:{account}",
        ":28C:00001/001",
        f":60F:C{BOOKED:%y%m%d}EUR1000,00",
    ]
    for number, payment in enumerate(items, 1):
        mark = "RC" if payment.return_reason else "C" if payment.credit else "D"
        amount = str(payment.amount).replace(".", ",")
        reference = payment.bank_ref or "NONREF"
        day = payment.booked
        lines.append(f":61:{day:%y%m%d}{day:%m%d}{mark}{amount}NTRFNONREF//{reference}")
        lines.append(":86:" + _details(payment, number))
    lines.append(f":62F:C{BOOKED:%y%m%d}EUR1000,00")
    lines.append("-")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _details(payment: Payment, number: int) -> str:
    gvc = "159" if payment.return_reason else ("166" if payment.credit else "116")
    posting = "GUTSCHRIFT" if payment.credit else "UEBERWEISUNG"
    posting = "RETOURE" if payment.return_reason else posting
    text = f"EREF+{payment.end_to_end}" if payment.end_to_end else ""
    purpose = " ".join(part for part in (payment.reference, payment.remittance) if part)
    text += f"SVWZ+{purpose}" if purpose else ""
    chunks = [text[i : i + 27] for i in range(0, len(text), 27)][:10]
    fields = [f"?00{posting}", f"?10{9300 + number}"]
    fields += [f"?{20 + i}{chunk}" for i, chunk in enumerate(chunks)]
    if payment.bic:
        fields.append(f"?30{payment.bic}")
    fields.append(f"?31{payment.iban}")
    fields.append(f"?32{payment.name[:27]}")
    if len(payment.name) > 27:
        fields.append(f"?33{payment.name[27:54]}")
    if payment.return_reason:
        fields.append(f"?34{payment.return_reason}")
    # :86: lines hold at most 65 characters; banks break before a subfield
    out, line = [], gvc
    for field in fields:
        if len(line) + len(field) > 65:
            out.append(line)
            line = ""
        line += field
    out.append(line)
    return "\r\n".join(out)
