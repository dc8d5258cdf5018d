"""Statements in, matched by rules that say why, booked exactly once (SQLite, real files)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.bank import rf
from kindly.bank.entries import StatementError
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.cases.read import case_of
from kindly.claims import balance as claims_balance
from kindly.payments.models import Instalment, Payment, Plan
from kindly.reconciliation import review
from kindly.reconciliation.importer import import_statement
from kindly.reconciliation.models import BankAllocation, BankEntry, BankStatement
from kindly.tracking.models import Event
from tests.support import bankfiles as bf
from tests.support.app import load_campaign

HEADER = "reference,first_name,last_name,currency,amount_due,due_date\n"
PORTFOLIO = HEADER + (
    "INV-40017,Erika,Mustermann,EUR,57.30,2026-11-15\n"
    "INV-40018,Max,Müller,EUR,120.00,2026-11-15\n"
    "4711,Jörg,Schäfer,EUR,80.00,2026-11-15\n"
    "INV-40020,Anna,Becker,EUR,99.00,2026-11-15\n"
    "INV-40021,Anna,Becker,EUR,99.00,2026-11-20\n"
    "X9,Hélène,Lefèvre,EUR,310.00,2026-11-15\n"
)
IBAN = "DE02120300000000202051"
OTHER_IBAN = "DE02500105170137075030"


@pytest.fixture
def world(ctx):
    """A generated portfolio in campaign 'winter'; yields (ctx, session, debtors by reference)."""
    load_campaign(ctx, "winter", PORTFOLIO)
    with ctx.db.session() as session:
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        yield ctx, session, debtors


def run(ctx, session, data: bytes, name: str = "statement.xml", **options):
    return import_statement(session, ctx.storage, data, name, **options)


def entries(session) -> list[BankEntry]:
    return list(session.scalars(select(BankEntry).order_by(BankEntry.id)))


def paid_total(session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Payment.amount_minor), 0))))


def spaced(reference: str) -> str:
    return " ".join(reference[i : i + 4] for i in range(0, len(reference), 4))


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("version", ["02", "08"])
def test_the_structured_rf_reference_matches_first(world, version):
    ctx, session, debtors = world
    erika = debtors["INV-40017"]
    data = bf.camt053([bf.Payment("Someone Else", IBAN, "57.30", reference=erika.payment_reference,
                                  remittance="INV-40018")], version=version)  # fmt: skip
    result = run(ctx, session, data)
    assert (result.entries, result.matched, result.unmatched) == (1, 1, 0)
    (entry,) = entries(session)
    assert (entry.state, entry.rule, entry.matched_text) == (
        "matched",
        "rf",
        erika.payment_reference,
    )
    assert case_of(session, erika).state == "paid"
    assert case_of(session, debtors["INV-40018"]).state == "open"  # rule order: RF wins


def test_an_rf_typed_in_lower_case_with_spaces_in_the_free_text_matches(world):
    ctx, session, debtors = world
    max_ = debtors["INV-40018"]
    text = f"Zahlung {spaced(max_.payment_reference).lower()} danke"
    data = bf.mt940([bf.Payment("M. Mueller", IBAN, "20.00", remittance=text)])
    result = run(ctx, session, data, "s.sta")
    assert result.matched == 1
    (entry,) = entries(session)
    assert (entry.rule, entry.matched_text) == ("rf", max_.payment_reference)
    state = case_of(session, max_)
    assert (state.state, state.balance_minor) == ("partly_paid", 10000)


def test_the_own_reference_is_found_as_a_whole_word_only(world):
    ctx, session, _debtors = world
    data = bf.camt053([
        bf.Payment("Firma X", OTHER_IBAN, "120.00", remittance="Rechnung INV-40018, danke"),
        bf.Payment("Firma Y", "DE75512108001245126199", "80.00", remittance="Kunde 47110 Rg 2024711"),
        bf.Payment("Firma Z", "DE12500105170648489890", "80.00", remittance="Ihre Nr.4711."),
    ])  # fmt: skip
    result = run(ctx, session, data)
    first, second, third = entries(session)
    assert (first.rule, first.matched_text) == ("reference", "INV-40018")
    assert second.state == "unmatched"  # 4711 inside 47110 and 2024711 is not the reference
    assert (third.rule, third.matched_text) == ("reference", "4711")
    assert (result.matched, result.unmatched) == (2, 1)


def test_a_reference_too_short_to_look_for_is_not_matched_in_text(world):
    ctx, session, _ = world
    run(ctx, session, bf.camt053([bf.Payment("Q", OTHER_IBAN, "1.00", remittance="Ref X9")]))
    assert entries(session)[0].state == "unmatched"


def test_the_iban_of_an_earlier_bank_payment_matches_the_same_debtor(world):
    ctx, session, debtors = world
    schaefer = debtors["4711"]
    run(ctx, session, bf.camt053([bf.Payment("J Schaefer", IBAN, "30.00", remittance="4711")]))
    later = bf.camt053([bf.Payment("Joerg S.", IBAN, "20.00", remittance="Rate 2",
                                   booked=dt.date(2026, 12, 15))], statement_id="S2")  # fmt: skip
    result = run(ctx, session, later)
    assert result.by_rule == {"iban": 1}
    entry = entries(session)[-1]
    assert (entry.rule, entry.matched_text) == ("iban", IBAN)
    assert claims_balance.balance_minor(session, schaefer) == 3000


def test_name_and_amount_match_only_when_exactly_one_open_case_fits(world):
    ctx, session, debtors = world
    data = bf.camt053([
        bf.Payment("LEFEVRE, HELENE", OTHER_IBAN, "310.00", remittance="virement"),
        bf.Payment("Anna Becker", IBAN, "99.00", remittance="Zahlung"),
        bf.Payment("Hélène Lefèvre", "FR7630006000011234567890189", "1.00", remittance="x"),
    ])  # fmt: skip
    result = run(ctx, session, data)
    unique, ambiguous, wrong_amount = entries(session)
    assert (unique.rule, unique.matched_text) == ("name_amount", "LEFEVRE, HELENE")
    assert case_of(session, debtors["X9"]).state == "paid"
    assert (
        ambiguous.state == "unmatched"
        and ambiguous.reason == "2 cases fit the payer's name and the amount"
    )
    assert wrong_amount.state == "unmatched" and wrong_amount.reason == "no case found"
    assert (result.matched, result.unmatched) == (1, 2)
    assert paid_total(session) == 31000  # nothing booked for the two that wait


def test_two_references_of_ours_in_one_transfer_wait_for_a_split(world):
    ctx, session, debtors = world
    a, b = debtors["INV-40017"], debtors["INV-40018"]
    text = f"{a.payment_reference} und {b.payment_reference}"
    run(ctx, session, bf.camt053([bf.Payment("E M", IBAN, "177.30", remittance=text)]))
    (entry,) = entries(session)
    assert entry.state == "unmatched" and entry.reason == "2 cases fit the payment references"
    review.split(session, entry.id, [review.Part(a, 5730), review.Part(b, 12000)],
                 user=None, via="cli")  # fmt: skip
    assert case_of(session, a).state == case_of(session, b).state == "paid"


# --------------------------------------------------------------------------- exactly once


def test_the_same_file_twice_changes_nothing(world):
    ctx, session, debtors = world
    data = bf.camt053([bf.Payment("E", IBAN, "57.30", reference=debtors["INV-40017"].payment_reference),
                       bf.Payment("?", OTHER_IBAN, "3.00", remittance="??")])  # fmt: skip
    first = run(ctx, session, data)
    counts = (
        paid_total(session),
        len(entries(session)),
        session.scalar(select(func.count(Event.id))),
    )
    second = run(ctx, session, data)
    assert (second.duplicate, second.already_imported, second.matched) == (True, 2, 0)
    assert second.statement_id == first.statement_id
    after = (
        paid_total(session),
        len(entries(session)),
        session.scalar(select(func.count(Event.id))),
    )
    assert after == counts
    assert session.scalar(select(func.count(BankStatement.id))) == 1


def test_overlapping_statements_book_each_entry_once(world):
    ctx, session, debtors = world
    refs = [debtors[r].payment_reference for r in ("INV-40017", "INV-40018", "4711")]
    pays = [bf.Payment(f"P{i}", IBAN, "10.00", reference=ref, bank_ref=f"BR-{i}")
            for i, ref in enumerate(refs)]  # fmt: skip
    run(ctx, session, bf.camt053(pays[:2], statement_id="S1"))
    result = run(ctx, session, bf.mt940(pays[1:], statement_id="S2"), "s.sta")
    assert (result.entries, result.already_imported, result.matched) == (2, 1, 1)
    assert paid_total(session) == 3000
    assert session.scalar(select(func.count(Payment.id))) == 3


def test_identical_transfers_without_bank_reference_on_one_day_stay_two(world):
    ctx, session, debtors = world
    ref = debtors["INV-40018"].payment_reference
    same = bf.Payment("M", IBAN, "10.00", reference=ref)
    result = run(ctx, session, bf.camt053([same, same]))
    assert result.matched == 2 and paid_total(session) == 2000


# --------------------------------------------------------------------------- money


def test_a_partial_payment_leaves_the_rest_open_and_an_overpayment_is_a_credit(world):
    ctx, session, debtors = world
    erika, max_ = debtors["INV-40017"], debtors["INV-40018"]
    data = bf.camt053([bf.Payment("E", IBAN, "60.00", reference=erika.payment_reference),
                       bf.Payment("M", OTHER_IBAN, "20.00", reference=max_.payment_reference)])  # fmt: skip
    run(ctx, session, data)
    assert (
        claims_balance.balance_minor(session, erika),
        claims_balance.credit_minor(session, erika),
    ) == (0, 270)
    assert case_of(session, erika).state == "paid"
    assert (
        claims_balance.balance_minor(session, max_),
        claims_balance.credit_minor(session, max_),
    ) == (10000, 0)
    payment = session.scalar(select(Payment).where(Payment.debtor_id == erika.id))
    assert (payment.provider, payment.method, payment.kind, payment.status) == (
        "bank",
        "bank_transfer",
        "payment",
        "succeeded",
    )
    assert (payment.payer_iban, payment.received_on, payment.amount_minor) == (
        IBAN,
        bf.BOOKED,
        6000,
    )
    paid = session.scalar(select(Event).where(Event.debtor_id == erika.id, Event.type == "paid"))
    assert paid.data == {"amount": "60.00", "currency": "EUR", "provider": "bank",
                         "method": "bank_transfer"}  # fmt: skip
    assert paid.idempotency_key == f"paid:bank:{payment.provider_ref}"


def test_a_returned_transfer_reverses_its_payment_and_the_case_is_open_again(world):
    ctx, session, debtors = world
    erika = debtors["INV-40017"]
    pay = bf.Payment("E", IBAN, "57.30", reference=erika.payment_reference, end_to_end="E2E-77")
    run(ctx, session, bf.camt053([pay]))
    assert case_of(session, erika).state == "paid"
    back = bf.Payment("E", IBAN, "57.30", credit=False, return_reason="AC04", end_to_end="E2E-77",
                      booked=dt.date(2026, 12, 3))  # fmt: skip
    result = run(ctx, session, bf.camt053([back], statement_id="S2"))
    assert (result.returned, result.ignored) == (1, 0)
    assert case_of(session, erika).state == "open"
    rows = session.scalars(select(Payment).order_by(Payment.id)).all()
    assert [(p.kind, p.amount_minor) for p in rows] == [("payment", 5730), ("return", -5730)]
    original, returned = entries(session)
    assert (original.state, returned.state, returned.rule) == ("returned", "returned", "return")
    again = run(ctx, session, bf.mt940([back], statement_id="S3"), "again.sta")
    assert again.returned == 0 and len(session.scalars(select(Payment)).all()) == 2


def test_debits_and_pending_entries_are_ignored(world):
    ctx, session, debtors = world
    ref = debtors["INV-40017"].payment_reference
    data = bf.camt053([bf.Payment("Bank", IBAN, "4.90", credit=False, remittance="Kontogebuehr"),
                       bf.Payment("E", IBAN, "57.30", reference=ref, status="PDNG")])  # fmt: skip
    result = run(ctx, session, data)
    assert (result.entries, result.ignored, result.matched) == (2, 2, 0)
    assert [e.reason for e in entries(session)] == ["money out", "pending entry"]
    assert paid_total(session) == 0


def test_a_transfer_pays_the_instalments_it_covers(world):
    ctx, session, debtors = world
    max_ = debtors["INV-40018"]
    plan = Plan(campaign_id=max_.campaign_id, debtor_id=max_.id, currency="EUR", total_minor=12000,
                frequency="monthly", count=3, status="agreed", misses=0)  # fmt: skip
    session.add(plan)
    session.flush()
    for seq in (1, 2, 3):
        session.add(Instalment(plan_id=plan.id, seq=seq, due_date=dt.date(2026, 12, seq),
                               amount_minor=4000, status="due", attempts=0))  # fmt: skip
    session.flush()
    # no reference: the payer's name and the next instalment's amount find the case
    run(ctx, session, bf.camt053([bf.Payment("Max Müller", IBAN, "40.00", remittance="Rate")]))
    session.refresh(plan)
    assert [i.status for i in plan.instalments] == ["paid", "due", "due"]
    assert plan.status == "active"
    assert case_of(session, max_).state == "plan_active"
    run(ctx, session, bf.camt053([bf.Payment("Max Müller", IBAN, "80.00", remittance="Rest")],
                                 statement_id="S2"))  # fmt: skip
    session.refresh(plan)
    assert [i.status for i in plan.instalments] == ["paid", "paid", "paid"]
    assert plan.status == "completed"


def test_a_case_once_paid_is_held_in_the_send_plan(world):
    from kindly.messaging import delivery
    from kindly.rules.store import decide, save_rules
    from kindly.rules.validate import parse_rules

    ctx, session, debtors = world
    at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    campaign = session.scalar(select(Campaign))
    session.add(CampaignStatus(campaign_id=campaign.id, status="live"))  # only a live one sends
    rules = parse_rules({"defaults": {"tone": "firm", "channels": ["email", "letter"]}})
    decide(session, campaign, save_rules(session, campaign, rules), at.date())
    erika = debtors["INV-40017"]
    run(
        ctx,
        session,
        bf.camt053([bf.Payment("E", IBAN, "57.30", reference=erika.payment_reference)]),
    )
    planned = {p.reference: p for p in delivery.plan(session, campaign, at)}
    assert (planned["INV-40017"].status, planned["INV-40017"].reason) == ("held", "paid")
    assert planned["INV-40018"].reason != "paid"


# --------------------------------------------------------------------------- bad files, scope


@pytest.mark.parametrize(
    "data",
    [
        b"<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'>",
        bf.camt053([bf.Payment("E", IBAN, "57.301")]),
        bf.camt053([bf.Payment("E", IBAN, "5.00", currency="XXQ")]),
        b"",
    ],
    ids=["truncated", "three-decimals", "unknown-currency", "empty"],
)
def test_a_bad_file_writes_nothing_not_even_the_stored_copy(world, data):
    ctx, session, _ = world
    with pytest.raises(StatementError):
        run(ctx, session, data)
    assert session.scalar(select(func.count(BankStatement.id))) == 0
    assert session.scalar(select(func.count(BankEntry.id))) == 0
    assert not (ctx.settings.data_dir / "storage" / "bank").exists()


def test_a_file_for_another_account_is_refused(world):
    ctx, session, _ = world
    with pytest.raises(StatementError, match="is for account"):
        run(ctx, session, bf.camt053([bf.Payment("E", IBAN, "1.00")]), account=OTHER_IBAN)


def test_the_file_is_kept_as_received(world):
    ctx, session, _ = world
    data = bf.camt053([bf.Payment("E", IBAN, "1.00")])
    result = run(ctx, session, data)
    statement = session.get(BankStatement, result.statement_id)
    assert ctx.storage.get(statement.storage_key) == data
    assert statement.account == bf.ACCOUNT and statement.format == "camt.053.001.08"


def test_narrowed_to_a_campaign_only_its_cases_match(world):
    ctx, session, debtors = world
    other = Campaign(slug="spring", name="Spring")
    session.add(other)
    session.flush()
    data = bf.camt053(
        [bf.Payment("E", IBAN, "57.30", reference=debtors["INV-40017"].payment_reference)]
    )
    result = run(ctx, session, data, campaign=other)
    assert (result.matched, result.unmatched) == (0, 1)


# --------------------------------------------------------------------------- the review queue


def test_assign_books_the_entry_and_is_audited(world):
    ctx, session, _debtors = world
    run(ctx, session, bf.camt053([bf.Payment("Unknown", OTHER_IBAN, "57.30", remittance="Rg")]))
    (entry,) = review.waiting(session)
    erika = review.find_debtor(session, "INV-40017")
    review.assign(session, entry.id, erika, user=None, via="cli")
    assert (entry.state, entry.rule, entry.decided_by) == ("matched", "manual", "operator")
    assert case_of(session, erika).state == "paid"
    log = session.scalar(select(AuditLog).where(AuditLog.action == "bank.assign"))
    assert log.detail["reference"] == "INV-40017" and log.detail["amount"] == "57.30"
    with pytest.raises(review.ReviewError, match="not waiting"):
        review.assign(session, entry.id, erika, user=None, via="cli")
    assert paid_total(session) == 5730
    # the IBAN is known now: the payer's next transfer finds the case by itself
    assert session.scalar(select(BankAllocation.debtor_id)) == erika.id


def test_a_split_must_add_up_exactly_and_a_bad_one_changes_nothing(world):
    ctx, session, debtors = world
    run(ctx, session, bf.camt053([bf.Payment("Family", OTHER_IBAN, "100.00", remittance="beide")]))
    (entry,) = review.waiting(session)
    a, b = debtors["INV-40017"], debtors["INV-40018"]
    with pytest.raises(review.ReviewError, match=r"add up to 99\.99"):
        review.split(session, entry.id, [review.Part(a, 5730), review.Part(b, 4269)],
                     user=None, via="cli")  # fmt: skip
    with pytest.raises(review.ReviewError, match="at least two"):
        review.split(session, entry.id, [review.Part(a, 10000)], user=None, via="cli")
    assert paid_total(session) == 0 and entry.state == "unmatched"
    review.split(
        session, entry.id, [review.Part(a, 5730), review.Part(b, 4270)], user=None, via="web"
    )
    assert entry.rule == "split"
    refs = sorted(p.provider_ref for p in session.scalars(select(Payment)))
    assert refs == [f"{entry.identity}#0", f"{entry.identity}#1"]
    assert (claims_balance.balance_minor(session, a), claims_balance.balance_minor(session, b)) == (
        0,
        7730,
    )
    assert (
        session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "bank.split")) == 2
    )


def test_not_ours_needs_a_note(world):
    ctx, session, _ = world
    run(
        ctx, session, bf.camt053([bf.Payment("Landlord", OTHER_IBAN, "900.00", remittance="Miete")])
    )
    (entry,) = review.waiting(session)
    with pytest.raises(review.ReviewError, match="note"):
        review.not_ours(session, entry.id, "  ", user=None, via="cli")
    review.not_ours(session, entry.id, "rent for the office", user=None, via="cli")
    assert (entry.state, entry.note) == ("not_ours", "rent for the office")
    assert review.waiting(session) == []
    assert session.scalar(select(AuditLog.action).where(AuditLog.action == "bank.not_ours"))


def test_amounts_and_references_in_decisions_are_checked(world):
    _, session, debtors = world
    with pytest.raises(review.ReviewError, match="no case"):
        review.find_debtor(session, "NOPE-1")
    assert (
        review.find_debtor(session, spaced(debtors["4711"].payment_reference)).reference == "4711"
    )
    with pytest.raises(review.ReviewError, match="amount"):
        review.amount_of("12.345", "EUR")
    with pytest.raises(review.ReviewError, match="more than zero"):
        review.amount_of("0", "EUR")
    assert review.amount_of("57.30", "EUR") == 5730


def test_every_debtor_has_a_valid_stable_payment_reference(world):
    _ctx, _session, debtors = world
    assert all(rf.is_valid(d.payment_reference) for d in debtors.values())
    assert debtors["4711"].payment_reference == rf.rf_for("winter", "4711")


def test_erasing_a_debtor_forgets_the_payer_in_their_transfers_and_export_lists_them(world):
    from kindly import privacy

    ctx, session, debtors = world
    erika = debtors["INV-40017"]
    run(ctx, session, bf.camt053([bf.Payment("Erika Mustermann", IBAN, "57.30",
                                             remittance=f"{erika.payment_reference} Mustermann")]))  # fmt: skip
    exported = privacy.export_debtor(session, erika.campaign, erika)
    assert [t["counterparty_iban"] for t in exported["bank_transfers"]] == [IBAN]
    privacy.erase_debtor(session, erika, ctx.storage)
    (entry,) = entries(session)
    assert (entry.counterparty_name, entry.counterparty_iban, entry.remittance) == (None, None, "")
    assert session.scalar(select(Payment.payer_iban)) is None
    assert claims_balance.balance_minor(session, erika) == 0  # the money stays booked


def test_a_bank_csv_export_is_read_through_its_saved_mapping(world):
    ctx, session, debtors = world
    mapping = {"date": "Buchungstag", "amount": "Betrag", "name": "Auftraggeber", "iban": "IBAN",
               "remittance": ["Verwendungszweck", "Verwendungszweck 2"], "decimal": ",",
               "date_format": "%d.%m.%Y"}  # fmt: skip
    text = (
        "Buchungstag;Betrag;Auftraggeber;IBAN;Verwendungszweck;Verwendungszweck 2\n"
        f"01.12.2026;57,30;Erika M.;{IBAN};Zahlung;{debtors['INV-40017'].payment_reference}\n"
        f"01.12.2026;-4,90;Bank;{IBAN};Gebühr;\n"
    )
    with pytest.raises(StatementError, match="column mapping"):
        run(ctx, session, text.encode(), "umsaetze.csv")
    result = import_statement(session, ctx.storage, text.encode(), "umsaetze.csv",
                              account=bf.ACCOUNT, mapping=mapping)  # fmt: skip
    assert (result.format, result.matched, result.ignored, result.account) == (
        "csv",
        1,
        1,
        bf.ACCOUNT,
    )
    assert case_of(session, debtors["INV-40017"]).state == "paid"
