"""Which case a statement entry pays, and why: four rules tried in order, in memory.

`load` reads what the rules need of every case in scope with a handful of bulk queries; `match`
then decides each entry by dictionary lookups alone, so an import costs the same few queries
whatever the number of entries. The rules, first one that names a case wins:

1. rf — an ISO 11649 reference of ours, the case's or one of its items' (issue 19): the
   structured creditor reference, or anywhere in the remittance text (any case, spaces and
   hyphens as people type them); an item's reference also names the item the money pays;
2. reference — the debtor's own reference as a whole word of the remittance text;
3. iban — the payer's IBAN paid an open case by transfer before, and only that one;
4. name_amount — the payer's name (normalised) and the amount fit exactly one open case: the
   amount is its open balance or its next instalment.

A rule that names two or more cases stops the search: the entry waits for a person.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.bank import rf
from kindly.bank.entries import Entry
from kindly.campaigns.items import Item
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import accrual
from kindly.payments.models import Instalment, Payment, Plan
from kindly.payments.plans import OPEN

MIN_REFERENCE = 4
"""Shorter debtor references are never looked for in free text: '12' is in every date."""
DUE = ("due", "failed")
TITLES = frozenset(
    {"dr", "prof", "herr", "frau", "mr", "mrs", "ms", "mme", "m", "sig", "sra", "sr"}
)
"""Words of a payer's name that say nothing about who it is."""

_WORDS = re.compile(r"[^\w\-/.]+")
"""What separates words of a remittance text; '-', '/' and '.' join ('INV-2024/17' is one)."""
_ABBREVIATION = re.compile(r"(?<=[^\W\d_])\.")
"""A dot after a letter ends an abbreviation ('Nr.4711'), never a number ('01.12.2026')."""
_RF_START = re.compile(r"(?<![0-9A-Za-z])RF[ \t-]?[0-9]{2}", re.IGNORECASE)
_SPACING = re.compile(r"[\s-]+")
_NAME = re.compile(r"[^\W\d_]+")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
"""Combining marks: what NFKD splits off a letter's accent."""


@dataclass(slots=True)
class OpenCase:
    """What the rules know of one case."""

    debtor_id: int
    campaign_id: int
    reference: str
    payment_reference: str | None
    name: str  # as imported; compared through name_key, computed when first needed
    currency: str
    balance_minor: int
    next_instalment_minor: int | None = None
    variant: str | None = None
    key: str | None = None

    def name_key(self) -> str:
        """The case's name as rule 4 compares it (kept once computed)."""
        if self.key is None:
            self.key = name_key(self.name)
        return self.key


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict on one entry: the case and the rule, or the reason it waits."""

    debtor_id: int | None
    rule: str | None
    text: str | None
    reason: str | None = None
    item_id: int | None = None  # the item whose own reference the entry quotes (its row id)


@dataclass
class Index:
    """Every case in scope by the keys the rules look up."""

    cases: dict[int, OpenCase] = field(default_factory=dict)
    by_rf: dict[str, int] = field(default_factory=dict)
    by_reference: dict[str, set[int]] = field(default_factory=dict)
    by_iban: dict[str, set[int]] = field(default_factory=dict)
    by_amount: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    by_item_rf: dict[str, tuple[int, int]] = field(default_factory=dict)  # (debtor, item row)

    def add(self, case: OpenCase) -> None:
        """Index one case (the IBANs come separately, from earlier payments)."""
        self.cases[case.debtor_id] = case
        if case.payment_reference:
            self.by_rf[case.payment_reference] = case.debtor_id
        ref = case.reference.casefold()
        if len(ref) >= MIN_REFERENCE:
            self.by_reference.setdefault(ref, set()).add(case.debtor_id)
        if case.name and case.balance_minor > 0:
            for amount in {case.balance_minor, case.next_instalment_minor}:
                if amount:
                    self.by_amount.setdefault((case.currency, amount), set()).add(case.debtor_id)

    def paid(self, debtor_id: int, amount_minor: int, iban: str | None) -> None:
        """Note a booking made during this import: the balance falls, the IBAN is known."""
        case = self.cases.get(debtor_id)
        if case is None:
            return
        case.balance_minor = max(case.balance_minor - amount_minor, 0)
        if iban:
            self.by_iban.setdefault(iban, set()).add(debtor_id)


def name_key(text: str | None) -> str:
    """A name compared without case, accents, order, punctuation or titles."""
    if not text:
        return ""
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(sorted(w for w in _NAME.findall(text.casefold()) if w not in TITLES))


def words(text: str) -> set[str]:
    """The whole words of a remittance text, case-folded, each at least MIN_REFERENCE long."""
    found = set()
    split = _ABBREVIATION.sub(" ", text)
    for raw in _WORDS.split(text) + (_WORDS.split(split) if split != text else []):
        word = raw.strip("-/._").casefold()
        if len(word) >= MIN_REFERENCE:
            found.add(word)
    return found


def compact_iban(value: str | None) -> str | None:
    """An IBAN without spaces, upper case; None when empty."""
    value = (value or "").replace(" ", "").upper()
    return value or None


def load(session: Session, campaign_ids: Iterable[int] | None = None) -> Index:
    """Every case of the campaigns (all campaigns: None) with what the rules need, in bulk."""
    narrowed = list(campaign_ids) if campaign_ids is not None else None
    table = Debtor.__table__
    query = select(
        table.c.id, table.c.campaign_id, table.c.reference, table.c.payment_reference,
        table.c.first_name, table.c.last_name, table.c.currency, table.c.amount_due_minor,
        table.c.variant,
    )  # fmt: skip
    if narrowed is not None:
        query = query.where(table.c.campaign_id.in_(narrowed))
    paid = _paid(session, narrowed)
    accrued = _accrued(session, narrowed)
    nexts = _next_instalments(session, narrowed)
    index = Index()
    rows = session.execute(query)
    for debtor_id, campaign_id, reference, payref, first, last, currency, due, variant in rows:
        balance = max(due + accrued.get(debtor_id, 0) - paid.get((debtor_id, currency), 0), 0)
        index.add(
            OpenCase(
                debtor_id, campaign_id, reference, payref,
                f"{first or ''} {last or ''}".strip(), currency, balance, nexts.get(debtor_id),
                variant,
            )
        )  # fmt: skip
    payers = select(Payment.debtor_id, Payment.payer_iban).where(
        Payment.provider == "bank",
        Payment.kind == "payment",
        Payment.status == "succeeded",
        Payment.payer_iban.is_not(None),
    )
    items = select(Item.payment_reference, Item.debtor_id, Item.id).where(Item.status != "closed")
    if narrowed is not None:
        items = items.join(Debtor, Debtor.id == Item.debtor_id).where(
            Debtor.campaign_id.in_(narrowed)
        )
    for reference, debtor_id, item_id in session.execute(items):
        if debtor_id in index.cases:
            index.by_item_rf[reference] = (debtor_id, item_id)
    for debtor_id, iban in session.execute(payers.distinct()):
        case = index.cases.get(debtor_id)
        if case is not None and case.balance_minor > 0:
            index.by_iban.setdefault(iban, set()).add(debtor_id)
    return index


def _accrued(session: Session, narrowed: list[int] | None) -> dict[int, int]:
    """Today's interest of the cases of campaigns that charge it (kindly.claims.interest): the
    open balance is the amount of the day. One statement when no campaign charges any."""
    ids = narrowed if narrowed is not None else list(session.scalars(select(Campaign.id)))
    charging = [
        campaign_id
        for campaign_id, document in accrual.documents(session, ids).items()
        if isinstance(spec := document.get("interest"), dict)
        and spec.get("basis", "none") != "none"
    ]
    if not charging:
        return {}
    debtors = session.scalars(select(Debtor).where(Debtor.campaign_id.in_(charging))).all()
    return accrual.accrued_minor(session, debtors, dt.date.today())


def _paid(session: Session, narrowed: list[int] | None) -> dict[tuple[int, str], int]:
    query = select(Payment.debtor_id, Payment.currency, func.sum(Payment.amount_minor)).where(
        Payment.status == "succeeded"
    )
    if narrowed is not None:
        query = query.where(Payment.campaign_id.in_(narrowed))
    query = query.group_by(Payment.debtor_id, Payment.currency)
    return {
        (debtor_id, currency): int(total or 0)
        for debtor_id, currency, total in session.execute(query)
    }


def _next_instalments(session: Session, narrowed: list[int] | None) -> dict[int, int]:
    query = (
        select(Plan.debtor_id, Instalment.amount_minor)
        .join(Instalment, Instalment.plan_id == Plan.id)
        .where(Plan.status.in_(OPEN), Instalment.status.in_(DUE))
        .order_by(Plan.debtor_id, Plan.id, Instalment.seq.desc())
    )
    if narrowed is not None:
        query = query.where(Plan.campaign_id.in_(narrowed))
    nexts: dict[int, int] = {}
    for debtor_id, amount in session.execute(query):
        nexts[debtor_id] = amount  # ordered so the latest plan's first due instalment wins
    return nexts


def match(index: Index, entry: Entry) -> Match:
    """The case a credit entry pays and the rule that found it, or why it waits."""
    verdict = _by_rf(index, entry) or _by_reference(index, entry)
    if verdict is None:
        verdict = _by_iban(index, entry) or _by_name_amount(index, entry)
    if verdict is None:
        return Match(None, None, None, "no case found")
    if verdict.debtor_id is not None:
        case = index.cases[verdict.debtor_id]
        if case.currency != entry.currency:
            return Match(None, None, verdict.text,
                         f"{verdict.rule} names a case in {case.currency}, the entry is in "
                         f"{entry.currency}")  # fmt: skip
    return verdict


def _one(rule: str, found: dict[int, str], what: str) -> Match | None:
    if not found:
        return None
    if len(found) == 1:
        ((debtor_id, text),) = found.items()
        return Match(debtor_id, rule, text)
    texts = ", ".join(sorted(set(found.values())))[:150]
    return Match(None, None, texts, f"{len(found)} cases fit {what}")


def ours_in(index: Index, text: str) -> list[str]:
    """Every payment reference of ours written in the text, however spaced or cased.

    From each 'RF' + two digits that starts a word, the characters that follow (spaces and
    hyphens dropped) are looked up at every length a reference can have: so a reference that
    runs into the next word, or two references in one text, are each found.
    """
    found: list[str] = []
    for start in _RF_START.finditer(text):
        run = _SPACING.sub("", text[start.start() : start.start() + 48]).upper()
        for end in range(min(len(run), 25), 4, -1):
            if run[:end] in index.by_rf or run[:end] in index.by_item_rf:
                if run[:end] not in found:
                    found.append(run[:end])
                break
    return found


def _by_rf(index: Index, entry: Entry) -> Match | None:
    candidates = []
    if entry.creditor_reference:  # only ours count, and ours are valid: no check needed
        candidates.append(rf.compact(entry.creditor_reference))
    candidates += ours_in(index, entry.remittance)
    found: dict[int, str] = {}
    items: dict[int, set[int]] = {}
    for candidate in candidates:
        debtor_id = index.by_rf.get(candidate)
        if debtor_id is None and candidate in index.by_item_rf:
            debtor_id, item_id = index.by_item_rf[candidate]
            items.setdefault(debtor_id, set()).add(item_id)
        if debtor_id is not None:
            found.setdefault(debtor_id, candidate)
    verdict = _one("rf", found, "the payment references")
    if verdict is not None and verdict.debtor_id is not None:
        named = items.get(verdict.debtor_id, set())
        if len(named) == 1:  # one item of the case named: the money pays it
            return Match(verdict.debtor_id, "rf", verdict.text, item_id=next(iter(named)))
    return verdict


def _by_reference(index: Index, entry: Entry) -> Match | None:
    text = entry.remittance
    if entry.creditor_reference:
        text = f"{text} {entry.creditor_reference}"
    found: dict[int, str] = {}
    for word in words(text):
        for debtor_id in index.by_reference.get(word, ()):
            found.setdefault(debtor_id, index.cases[debtor_id].reference)
    return _one("reference", found, "the references in the text")


def _by_iban(index: Index, entry: Entry) -> Match | None:
    iban = compact_iban(entry.counterparty_iban)
    if iban is None:
        return None
    found = {
        debtor_id: iban
        for debtor_id in index.by_iban.get(iban, ())
        if index.cases[debtor_id].balance_minor > 0
    }
    return _one("iban", found, "the payer's IBAN")


def _by_name_amount(index: Index, entry: Entry) -> Match | None:
    name = name_key(entry.counterparty_name)
    if not name:
        return None
    found = {}
    for debtor_id in index.by_amount.get((entry.currency, entry.amount_minor), ()):
        case = index.cases[debtor_id]
        if case.balance_minor > 0 and case.name_key() == name:
            found[debtor_id] = entry.counterparty_name or name
    return _one("name_amount", found, "the payer's name and the amount")
