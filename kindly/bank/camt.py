"""ISO 20022 camt.053 (statement) and camt.054 (debit/credit notification), .001.02 to .001.08.

Read with defusedxml's iterparse: a DTD, an entity or an external reference is refused before
it is expanded or fetched, and each entry's elements are dropped once it is read, so memory
stays flat on large files. Elements are looked up in the document's own namespace, so every
listed version reads through the same code; the differences between versions (status as text
or as `Cd`, `BIC` or `BICFI`, a party's name directly or under `Pty`, the transaction amount in
`Amt` or `AmtDtls/TxAmt/Amt`) are each tried in turn.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml import ElementTree as SafeTree

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
RETURN_SUBFAMILIES = frozenset({"RRTN", "ARET", "UPDD", "RPCR", "PRDD", "RCDD"})
"""Bank transaction sub-families that give money back: returns, reversals, unpaid debits."""


def parse(data: bytes) -> list[Statement]:
    """Every statement (camt.053) or notification (camt.054) in the file, in order."""
    check_size(len(data))
    try:
        return _Reader().read(data)
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
    except ParseError as error:
        line, column = error.position
        raise StatementError(
            f"malformed XML ({str(error).split(':')[0]})", f"line {line}, column {column}"
        ) from None


class _Reader:
    """One pass over one file: namespace checked at the root, entries read as they close."""

    def __init__(self) -> None:
        self.ns = ""
        self.kind = ""
        self._paths: dict[str, str] = {}

    def q(self, path: str) -> str:
        """A slash path of local names in the document's namespace ('Acct/Id/IBAN')."""
        qualified = self._paths.get(path)
        if qualified is None:
            qualified = "/".join(f"{{{self.ns}}}{part}" for part in path.split("/"))
            self._paths[path] = qualified
        return qualified

    def text(self, element: Element, path: str) -> str | None:
        """Stripped text at path, None when absent or empty."""
        found = element.find(self.q(path))
        if found is None or found.text is None:
            return None
        return found.text.strip() or None

    def read(self, data: bytes) -> list[Statement]:
        statements: list[Statement] = []
        events = SafeTree.iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True)
        depth = 0
        header: Element | None = None
        group: Element | None = None
        entries: list[Entry] = []
        number = 0
        for event, element in events:
            if event == "start":
                depth += 1
                if depth == 1:
                    self._root(element)
                elif depth == 2:
                    self._message(element)
                elif depth == 3 and element.tag == self.q(KINDS[self.kind][1]):
                    number += 1
                    header, entries = element, []
                continue
            depth -= 1
            if header is None:
                if depth == 2 and element.tag == self.q("GrpHdr"):
                    group = element
                continue
            if depth == 3 and element.tag == self.q("Ntry"):
                where = f"{KINDS[self.kind][1]}[{number}]/Ntry[{len(entries) + 1}]"
                entries.extend(self._entries(element, header, where))
                header.remove(element)  # flat memory: the entry is read
            elif depth == 2 and element is header:
                statements.append(self._statement(header, group, entries, number))
                header = None
        if not statements and self.kind:
            raise StatementError(f"the {self.kind} file holds no {KINDS[self.kind][1]} element")
        return statements

    def _root(self, element: Element) -> None:
        ns, _, local = element.tag[1:].partition("}") if element.tag[0] == "{" else ("", "", "")
        if local != "Document":
            raise StatementError(
                f"the root element is {element.tag!r}; expected an ISO 20022 <Document>"
            )
        if ns not in NAMESPACES:
            known = ", ".join(sorted({n.rsplit(":", 1)[1][:8] for n in NAMESPACES}))
            raise StatementError(
                f"the namespace {ns!r} is not read (read are {known} versions .001.02 to .001.08)",
                "Document",
            )
        self.ns, self.kind = ns, NAMESPACES[ns]

    def _message(self, element: Element) -> None:
        expected = KINDS[self.kind][0]
        if element.tag != self.q(expected):
            local = element.tag.rpartition("}")[2]
            raise StatementError(
                f"found <{local}> where a {self.kind} message has <{expected}>", "Document"
            )

    def _statement(
        self, header: Element, group: Element | None, entries: list[Entry], number: int
    ) -> Statement:
        where = f"{KINDS[self.kind][1]}[{number}]"
        statement_id = self.text(header, "Id")
        if not statement_id:
            raise StatementError("the statement has no Id", where)
        created = self.text(header, "CreDtTm")
        if not created and group is not None:
            created = self.text(group, "CreDtTm")
        currency = self.text(header, "Acct/Ccy")
        return Statement(
            account=self._account(header),
            id=statement_id,
            created=_datetime(created, f"{where}/CreDtTm") if created else None,
            currency=currency_of(currency, f"{where}/Acct/Ccy") if currency else None,
            format=self.ns.rsplit(":", 1)[1],
            entries=tuple(entries),
        )

    def _account(self, header: Element) -> str | None:
        iban = self.text(header, "Acct/Id/IBAN") or self.text(header, "Acct/Id/Othr/Id")
        return iban.replace(" ", "").upper() if iban else None

    def _entries(self, ntry: Element, header: Element, where: str) -> list[Entry]:
        currency, minor = self._amount(ntry, "Amt", where)
        if minor is None:
            raise StatementError("the entry has no amount", f"{where}/Amt")
        credit = self._credit(ntry, where)
        status = self._status(ntry, where)
        reference = self.text(ntry, "AcctSvcrRef")
        base = {
            "account": self._account(header),
            "statement_id": self.text(header, "Id") or "",
            "booking_date": self._date(ntry, "BookgDt", where),
            "value_date": self._date(ntry, "ValDt", where),
            "currency": currency,
            "status": status,
            "bank_code": self._bank_code(ntry),
            "is_return": False,
        }
        base["is_return"] = (
            self.text(ntry, "RvslInd") in ("true", "1") or base["bank_code"] in _RETURN_CODES
        )
        details = ntry.findall(self.q("NtryDtls/TxDtls"))
        if len(details) > 1:
            amounts = [self._amount(tx, "Amt", where, "AmtDtls/TxAmt/Amt") for tx in details]
            if all(value is not None for _, value in amounts):
                return self._batch(details, amounts, base, credit, minor, reference, where)
            # a batch booked as one sum, its parts without amounts: it can only be one entry
            texts = [
                self._details(tx, f"{where}/NtryDtls/TxDtls[{i}]", credit)["remittance"]
                for i, tx in enumerate(details, 1)
            ]
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
        if not details:
            text = self.text(ntry, "AddtlNtryInf") or ""
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
        found = self._details(details[0], f"{where}/NtryDtls/TxDtls[1]", credit)
        return [_entry(base, found, reference, minor, credit, where)]

    def _batch(self, details, amounts, base, credit, minor, reference, where):
        entries = []
        signed_total = 0
        pairs = zip(details, amounts, strict=True)
        for index, (tx, (tx_currency, tx_minor)) in enumerate(pairs, 1):
            at = f"{where}/NtryDtls/TxDtls[{index}]"
            if tx_currency != base["currency"]:
                raise StatementError(
                    f"the transaction is in {tx_currency}, its entry in {base['currency']}", at
                )
            has_side = tx.find(self.q("CdtDbtInd")) is not None
            tx_credit = self._credit(tx, at) if has_side else credit
            signed_total += tx_minor if tx_credit else -tx_minor
            found = self._details(tx, at, tx_credit)
            fallback = f"{reference}/{index}" if reference else None
            entries.append(_entry(base, found, fallback, tx_minor, tx_credit, at))
        if signed_total != (minor if credit else -minor):
            raise StatementError(
                "the batch's transaction amounts do not add up to the entry's amount",
                f"{where}/Amt",
            )
        return entries

    def _details(self, tx: Element, where: str, credit: bool) -> dict:
        """What one TxDtls says: references, parties, remittance, return information."""
        # the counterparty of money in is the debtor, of money out the creditor; a return may
        # keep the parties of the payment it returns, so the other side is the fallback
        sides = (("Dbtr", "DbtrAgt"), ("Cdtr", "CdtrAgt"))
        name = iban = bic = None
        for party, agent in sides if credit else sides[::-1]:
            name = self.text(tx, f"RltdPties/{party}/Nm") or self.text(
                tx, f"RltdPties/{party}/Pty/Nm"
            )
            iban = self.text(tx, f"RltdPties/{party}Acct/Id/IBAN")
            bic = self.text(tx, f"RltdAgts/{agent}/FinInstnId/BICFI") or self.text(
                tx, f"RltdAgts/{agent}/FinInstnId/BIC"
            )
            if name or iban:
                break
        lines = [el.text.strip() for el in tx.iterfind(self.q("RmtInf/Ustrd")) if el.text]
        lines += [
            el.text.strip() for el in tx.iterfind(self.q("RmtInf/Strd/AddtlRmtInf")) if el.text
        ]
        text = " ".join(line for line in lines if line) or self.text(tx, "AddtlTxInf") or ""
        end_to_end = self.text(tx, "Refs/EndToEndId")
        if end_to_end == "NOTPROVIDED":
            end_to_end = None
        code = self._bank_code(tx)
        returned = tx.find(self.q("RtrInf"))
        is_return = returned is not None
        reason = None
        if returned is not None:
            reason = self.text(returned, "Rsn/Cd") or self.text(returned, "Rsn/Prtry")
        return {
            "reference": self.text(tx, "Refs/AcctSvcrRef"),
            "counterparty_name": name,
            "counterparty_iban": iban.replace(" ", "").upper() if iban else None,
            "counterparty_bic": bic,
            "remittance": text,
            "creditor_reference": self.text(tx, "RmtInf/Strd/CdtrRefInf/Ref"),
            "end_to_end_id": end_to_end,
            "is_return": is_return or code in _RETURN_CODES,
            "bank_code": code,
            "return_reason": reason,
            "original_reference": end_to_end if is_return else None,
        }

    def _amount(self, element: Element, path: str, where: str, fallback: str | None = None):
        found = element.find(self.q(path))
        if found is None and fallback:
            path, found = fallback, element.find(self.q(fallback))
        if found is None:
            return None, None
        at = f"{where}/{path}"
        currency = currency_of(found.get("Ccy"), f"{at}/@Ccy")
        return currency, minor_units(found.text or "", currency, at)

    def _credit(self, element: Element, where: str) -> bool:
        indicator = self.text(element, "CdtDbtInd")
        if indicator not in ("CRDT", "DBIT"):
            raise StatementError(
                f"CdtDbtInd is {indicator!r}, not CRDT or DBIT", f"{where}/CdtDbtInd"
            )
        return indicator == "CRDT"

    def _status(self, ntry: Element, where: str) -> str:
        code = self.text(ntry, "Sts/Cd") or self.text(ntry, "Sts/Prtry") or self.text(ntry, "Sts")
        if code not in STATUS:
            raise StatementError(f"unknown entry status {code!r}", f"{where}/Sts")
        return STATUS[code]

    def _date(self, ntry: Element, path: str, where: str) -> date | None:
        day = self.text(ntry, f"{path}/Dt")
        if day:
            try:
                return date.fromisoformat(day)
            except ValueError:
                raise StatementError(f"{day!r} is not a date", f"{where}/{path}/Dt") from None
        moment = self.text(ntry, f"{path}/DtTm")
        return _datetime(moment, f"{where}/{path}/DtTm").date() if moment else None

    def _bank_code(self, element: Element) -> str | None:
        domain = self.text(element, "BkTxCd/Domn/Cd")
        if domain:
            family = self.text(element, "BkTxCd/Domn/Fmly/Cd") or ""
            sub = self.text(element, "BkTxCd/Domn/Fmly/SubFmlyCd") or ""
            return f"{domain}/{family}/{sub}"
        return self.text(element, "BkTxCd/Prtry/Cd")


_RETURN_CODES = frozenset(
    f"PMNT/{family}/{sub}"
    for family in ("RCDT", "ICDT", "RDDT", "IDDT")
    for sub in RETURN_SUBFAMILIES
)


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


def _datetime(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise StatementError(f"{text!r} is not a date and time", where) from None
