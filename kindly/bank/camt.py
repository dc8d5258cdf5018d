"""ISO 20022 camt.053 (statement) and camt.054 (debit/credit notification), .001.02 to .001.08.

Two readers, one job each. defusedxml reads the prolog up to the root element and refuses a
DTD: a DTD can only stand there, and without one no entity can be declared, expanded or
fetched. lxml then reads the body (entities never resolved, no network, libxml2's size and
depth limits on), hands over one `Ntry` at a time and drops it once read, so memory stays flat.
lxml builds the tree about four times faster than ElementTree, and the whole read of an entry
runs about twice as fast as with defusedxml's own (Python-level) ElementTree parser.

Each entry is flattened once into {local path: text}, so every listed version reads through
the same lookups; the differences between versions (status as text or as `Cd`, `BIC` or
`BICFI`, a party's name directly or under `Pty`, the transaction amount in `Amt` or
`AmtDtls/TxAmt/Amt`) are each tried in turn.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml import ElementTree as SafeTree
from lxml import etree

from kindly.bank.entries import (
    Entry,
    Statement,
    StatementError,
    check_size,
    currency_of,
    minor_units,
)

PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
VERSIONS = ("02", "03", "04", "05", "06", "07", "08")
KINDS = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
NAMESPACES = {f"{PREFIX}{kind}.001.{version}": kind for kind in KINDS for version in VERSIONS}
"""Every namespace read, with its message kind."""

STATUS = {"BOOK": "booked", "PDNG": "pending", "FUTR": "pending", "INFO": "info"}
RETURN_SUBFAMILIES = ("RRTN", "ARET", "UPDD", "RPCR", "PRDD", "RCDD")
"""Bank transaction sub-families that give money back: returns, reversals, unpaid debits."""
RETURN_CODES = frozenset(
    f"PMNT/{family}/{sub}"
    for family in ("RCDT", "ICDT", "RDDT", "IDDT")
    for sub in RETURN_SUBFAMILIES
)
MULTIPLE = frozenset({"RmtInf/Ustrd", "RmtInf/Strd/AddtlRmtInf", "TxDtls"})
"""Paths that may repeat and are all kept (as lists); any other path keeps its first text."""

_SKIPPED = (
    "Bal TxsSummry Avlbty Chrgs Intrst RltdDts RltdPric RltdQties FinInstrmId Tax CorpActn "
    "SfkpgAcct CshDpst CardTx SplmtryData PstlAdr Btch NtryRef Tp Purp LclInstrm RltdRmtInf "
    "InstdAmt CntrValAmt AnncdPstngAmt PrtryAmt CtctDtls RfrdDocInf RfrdDocAmt Invcr Invcee "
    "TaxRmt GrnshmtRmt UltmtDbtr UltmtCdtr InitgPty TradgPty CcyXchg TechInptChanl"
)
SKIPPED = frozenset(_SKIPPED.split())
"""Elements never read: skipped whole, with everything under them (banks send plenty)."""

Flat = dict[str, Any]


def parse(data: bytes) -> list[Statement]:
    """Every statement (camt.053) or notification (camt.054) in the file, in order."""
    check_size(len(data))
    try:
        return _Reader(_prolog(data)).read(data)
    except DTDForbidden:
        raise StatementError(
            "the file declares a DTD (<!DOCTYPE …>); bank statements need none, and it is "
            "refused so that no entity is expanded and nothing is fetched"
        ) from None
    except EntitiesForbidden as error:
        raise StatementError(f"the file declares the entity {error.name!r}; refused") from None
    except ExternalReferenceForbidden as error:
        raise StatementError(
            f"the file refers to the external resource {error.sysid!r}; nothing is fetched"
        ) from None
    except DefusedXmlException as error:
        raise StatementError(f"unsafe XML refused: {error}") from None
    except SafeTree.ParseError as error:
        line, column = error.position
        reason = str(error).split(":")[0]
        raise StatementError(f"malformed XML ({reason})", f"line {line}, column {column}") from None
    except etree.XMLSyntaxError as error:
        line, column = error.position
        reason = (error.msg or "").split(",")[0]
        raise StatementError(f"malformed XML ({reason})", f"line {line}, column {column}") from None


def _prolog(data: bytes) -> tuple[str, str]:
    """The root's and the message's tags, read by defusedxml, which refuses any DTD."""
    tags: list[str] = []
    for _, element in SafeTree.iterparse(io.BytesIO(data), events=("start",), forbid_dtd=True):
        tags.append(element.tag)
        if len(tags) == 2:
            break
    if not tags:
        raise StatementError("the XML file has no root element")
    return tags[0], tags[1] if len(tags) > 1 else ""


class _Reader:
    """One pass over one file: namespace checked first, entries read as they close."""

    def __init__(self, tags: tuple[str, str]) -> None:
        root, message = tags
        ns, _, local = root[1:].partition("}") if root.startswith("{") else ("", "", root)
        if local != "Document":
            raise StatementError(f"the root element is <{root}>; expected an ISO 20022 <Document>")
        if ns not in NAMESPACES:
            raise StatementError(
                f"the namespace {ns!r} is not read (read are camt.053 and camt.054, versions "
                ".001.02 to .001.08)",
                "Document",
            )
        self.ns, self.kind = ns, NAMESPACES[ns]
        self.cut = len(ns) + 2
        expected = KINDS[self.kind][0]
        if message != self.q(expected):
            raise StatementError(
                f"found <{message[self.cut :]}> where a {self.kind} message has <{expected}>",
                "Document",
            )
        self.block = KINDS[self.kind][1]

    def q(self, local: str) -> str:
        """The qualified tag of a local name in the document's namespace."""
        return f"{{{self.ns}}}{local}"

    def read(self, data: bytes) -> list[Statement]:
        statements: list[Statement] = []
        block, entry = self.q(self.block), self.q("Ntry")
        # safe: _prolog refused any DTD, so no entity exists to expand or fetch
        events = etree.iterparse(
            io.BytesIO(data),
            events=("end",),
            tag=(block, entry),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        header: Flat | None = None
        entries: list[Entry] = []
        for _, element in events:
            if element.tag == entry:
                if header is None:  # the statement's own fields all stand before its entries
                    header = self._flatten(element.getparent(), skip=entry)
                where = f"{self.block}[{len(statements) + 1}]/Ntry[{len(entries) + 1}]"
                entries.extend(self._entries(self._flatten(element), header, where))
                element.clear()
                while element.getprevious() is not None:  # flat memory: read entries go
                    del element.getparent()[0]
            else:
                if header is None:
                    header = self._flatten(element, skip=entry)
                statements.append(self._statement(header, entries, len(statements) + 1))
                header, entries = None, []
                element.clear()
        if not statements:
            raise StatementError(f"the {self.kind} file holds no <{self.block}>")
        return statements

    def _flatten(self, element: Any, skip: str | None = None) -> Flat:
        """{'Amt': '57.30', 'Amt/@Ccy': 'EUR', 'RltdPties/Dbtr/Nm': …} for one element."""
        flat: Flat = {}
        cut = self.cut
        tx = self.q("TxDtls")

        def walk(node: Any, prefix: str) -> None:
            for child in node:
                tag = child.tag
                if tag == skip:
                    continue
                if tag == tx:
                    flat.setdefault("TxDtls", []).append(self._flatten(child))
                    continue
                local = tag[cut:]
                if local in SKIPPED:
                    continue
                path = prefix + local
                if local == "RtrInf":  # its presence alone says the payment came back
                    flat["RtrInf"] = ""
                if len(child):
                    walk(child, path + "/")
                    continue
                text = (child.text or "").strip()
                if path in MULTIPLE:
                    flat.setdefault(path, []).append(text)
                elif path not in flat:
                    flat[path] = text
                    if child.attrib:
                        for name, value in child.attrib.items():
                            flat[f"{path}/@{name}"] = value

        walk(element, "")
        return flat

    def _statement(self, header: Flat, entries: list[Entry], number: int) -> Statement:
        where = f"{self.block}[{number}]"
        if not header.get("Id"):
            raise StatementError("the statement has no Id", where)
        created = header.get("CreDtTm")
        currency = header.get("Acct/Ccy")
        return Statement(
            account=_account(header),
            id=header["Id"],
            created=_datetime(created, f"{where}/CreDtTm") if created else None,
            currency=currency_of(currency, f"{where}/Acct/Ccy") if currency else None,
            format=self.ns.rsplit(":", 1)[1],
            entries=tuple(entries),
        )

    def _entries(self, ntry: Flat, header: Flat, where: str) -> list[Entry]:
        currency, minor = _amount(ntry, "Amt", where)
        if minor is None:
            raise StatementError("the entry has no amount", f"{where}/Amt")
        credit = _credit(ntry, where)
        reference = ntry.get("AcctSvcrRef") or None
        code = _bank_code(ntry)
        base = {
            "account": _account(header),
            "statement_id": header.get("Id") or "",
            "booking_date": _date(ntry, "BookgDt", where),
            "value_date": _date(ntry, "ValDt", where),
            "currency": currency,
            "status": _status(ntry, where),
            "bank_code": code,
            "is_return": ntry.get("RvslInd") in ("true", "1") or code in RETURN_CODES,
        }
        details: list[Flat] = ntry.get("TxDtls", [])
        if len(details) == 1:
            return [_entry(base, _details(details[0], credit), reference, minor, credit, where)]
        if details:
            amounts = [_amount(tx, "Amt", where, "AmtDtls/TxAmt/Amt") for tx in details]
            if all(value is not None for _, value in amounts):
                return _batch(details, amounts, base, credit, minor, reference, where)
            # a batch booked as one sum, its parts without amounts: it can only be one entry
            texts = [_details(tx, credit)["remittance"] for tx in details]
        else:
            texts = [ntry.get("AddtlNtryInf") or ""]
        text = " ".join(t for t in texts if t)
        return [
            Entry(
                **base,
                reference=reference,
                amount_minor=minor,
                credit=credit,
                remittance=text,
                origin=where,
            )
        ]


def _batch(details, amounts, base, credit, minor, reference, where) -> list[Entry]:
    """One Entry per transaction of a batch-booked entry; their amounts must add up."""
    entries = []
    signed_total = 0
    for index, (tx, (tx_currency, tx_minor)) in enumerate(zip(details, amounts, strict=True), 1):
        at = f"{where}/NtryDtls/TxDtls[{index}]"
        if tx_currency != base["currency"]:
            raise StatementError(
                f"the transaction is in {tx_currency}, its entry in {base['currency']}", at
            )
        tx_credit = _credit(tx, at) if tx.get("CdtDbtInd") else credit
        signed_total += tx_minor if tx_credit else -tx_minor
        fallback = f"{reference}/{index}" if reference else None
        entries.append(_entry(base, _details(tx, tx_credit), fallback, tx_minor, tx_credit, at))
    if signed_total != (minor if credit else -minor):
        raise StatementError(
            "the batch's transaction amounts do not add up to the entry's amount", f"{where}/Amt"
        )
    return entries


def _details(tx: Flat, credit: bool) -> dict[str, Any]:
    """What one TxDtls says: references, parties, remittance, return information."""
    # the counterparty of money in is the debtor, of money out the creditor; a return may
    # keep the parties of the payment it returns, so the other side is the fallback
    name = iban = bic = None
    for party, agent in (("Dbtr", "DbtrAgt"), ("Cdtr", "CdtrAgt"))[:: 1 if credit else -1]:
        name = tx.get(f"RltdPties/{party}/Nm") or tx.get(f"RltdPties/{party}/Pty/Nm")
        iban = tx.get(f"RltdPties/{party}Acct/Id/IBAN")
        bic = tx.get(f"RltdAgts/{agent}/FinInstnId/BICFI") or tx.get(
            f"RltdAgts/{agent}/FinInstnId/BIC"
        )
        if name or iban:
            break
    lines = tx.get("RmtInf/Ustrd", []) + tx.get("RmtInf/Strd/AddtlRmtInf", [])
    text = " ".join(line for line in lines if line) or tx.get("AddtlTxInf") or ""
    end_to_end = tx.get("Refs/EndToEndId") or None
    if end_to_end == "NOTPROVIDED":
        end_to_end = None
    code = _bank_code(tx)
    returned = "RtrInf" in tx
    return {
        "reference": tx.get("Refs/AcctSvcrRef") or None,
        "counterparty_name": name or None,
        "counterparty_iban": iban.replace(" ", "").upper() if iban else None,
        "counterparty_bic": bic or None,
        "remittance": text,
        "creditor_reference": tx.get("RmtInf/Strd/CdtrRefInf/Ref") or None,
        "end_to_end_id": end_to_end,
        "is_return": returned or code in RETURN_CODES,
        "bank_code": code,
        "return_reason": (tx.get("RtrInf/Rsn/Cd") or tx.get("RtrInf/Rsn/Prtry") or None)
        if returned
        else None,
        "original_reference": end_to_end if returned else None,
    }


def _entry(base: dict, found: dict, reference, minor: int, credit: bool, where: str) -> Entry:
    """An Entry from the entry's fields and one transaction's details (which win)."""
    own = found.pop("reference")
    code = found.pop("bank_code") or base["bank_code"]
    is_return = found.pop("is_return") or base["is_return"]
    fields = {**base, "bank_code": code, "is_return": is_return}
    return Entry(
        **fields,
        reference=own or reference,
        amount_minor=minor,
        credit=credit,
        origin=where,
        **found,
    )


def _account(header: Flat) -> str | None:
    iban = header.get("Acct/Id/IBAN") or header.get("Acct/Id/Othr/Id")
    return iban.replace(" ", "").upper() if iban else None


def _amount(flat: Flat, path: str, where: str, fallback: str | None = None):
    if path not in flat and fallback:
        path = fallback
    if path not in flat:
        return None, None
    at = f"{where}/{path}"
    currency = currency_of(flat.get(f"{path}/@Ccy"), f"{at}/@Ccy")
    return currency, minor_units(flat[path], currency, at)


def _credit(flat: Flat, where: str) -> bool:
    indicator = flat.get("CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise StatementError(f"CdtDbtInd is {indicator!r}, not CRDT or DBIT", f"{where}/CdtDbtInd")
    return indicator == "CRDT"


def _status(ntry: Flat, where: str) -> str:
    code = ntry.get("Sts/Cd") or ntry.get("Sts/Prtry") or ntry.get("Sts")
    if code not in STATUS:
        raise StatementError(f"unknown entry status {code!r}", f"{where}/Sts")
    return STATUS[code]


def _date(ntry: Flat, path: str, where: str) -> date | None:
    day = ntry.get(f"{path}/Dt")
    if day:
        try:
            return date.fromisoformat(day)
        except ValueError:
            raise StatementError(f"{day!r} is not a date", f"{where}/{path}/Dt") from None
    moment = ntry.get(f"{path}/DtTm")
    return _datetime(moment, f"{where}/{path}/DtTm").date() if moment else None


def _bank_code(flat: Flat) -> str | None:
    domain = flat.get("BkTxCd/Domn/Cd")
    if domain:
        family = flat.get("BkTxCd/Domn/Fmly/Cd") or ""
        sub = flat.get("BkTxCd/Domn/Fmly/SubFmlyCd") or ""
        return f"{domain}/{family}/{sub}"
    return flat.get("BkTxCd/Prtry/Cd") or None


def _datetime(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise StatementError(f"{text!r} is not a date and time", where) from None
