"""Costs by step (issue 19, item 3): booked once per (case, step) when the step's message is
committed, never on hold or paid, capped per case, and shown by type and basis (RDG § 13a)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases import holds
from kindly.claims import costs
from kindly.claims.amount import amounts_on
from kindly.claims.cost_booking import CostBooking
from kindly.ledger import manual
from kindly.messaging import delivery
from kindly.messaging.models import Send
from kindly.rules.document import RulesError
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support.app import launched, load_campaign
from workers.queues import Dispatcher
from workers.send import enqueue_sends, send_message

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
DUNNING = {"step": 1, "type": "dunning_fee", "amount": "5.00", "basis": "§ 288 Abs. 4 BGB",
           "cap": "7.50"}  # fmt: skip
INQUIRY = {"step": 2, "type": "address_inquiry", "amount": "3.20", "basis": "§ 288 Abs. 4 BGB"}
RULES = {
    "defaults": {
        "tone": "firm", "channels": ["email", "letter"], "cadence_days": [0, 7, 14],
        "costs": [
            {"step": 0, "type": "collection_fee", "amount": "12.50",
             "basis": "RDG § 13a / RVG VV 2300"},
            DUNNING, {**DUNNING, "step": 2}, INQUIRY,
        ],
    },
}  # fmt: skip


def setup(ctx, rules: dict = RULES) -> None:
    load_campaign(ctx)
    launched(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(rules)), AT.date())


def run(ctx, at: dt.datetime = AT) -> dict[str, delivery.Planned]:
    """Plan and deliver what is due at `at` (in-process jobs, as without Redis)."""
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), at)
    enqueue_sends(Dispatcher(ctx.settings), planned, at)
    return {p.reference: p for p in planned}


def booked(ctx, reference: str = "A-1") -> list[tuple[int, str, int, str]]:
    with ctx.db.session() as session:
        return [
            (b.step, b.cost_type, b.amount_minor, b.currency)
            for b in session.scalars(
                select(CostBooking)
                .join(Debtor, Debtor.id == CostBooking.debtor_id)
                .where(Debtor.reference == reference)
                .order_by(CostBooking.id)
            )
        ]


def debtor_id(ctx, reference: str = "A-1") -> int:
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.id).where(Debtor.reference == reference))


# ---- the rules document ---------------------------------------------------------------------


def test_costs_in_the_rules_are_validated_with_every_problem_and_its_path():
    bad = {
        "defaults": {
            "cadence_days": [0, 7],
            "costs": [
                {"step": 5, "type": "dunning_fee", "amount": "5.00", "basis": "§ 288 BGB"},
                {"step": 1, "type": "lunch", "amount": 5, "basis": "  ", "colour": "red"},
                {"step": -1, "type": "dunning_fee", "amount": "5.00", "basis": "x",
                 "cap": "2.00"},
                {"step": 1, "type": "address_inquiry", "amount": "1.00", "basis": "x"},
                {"step": 1, "type": "address_inquiry", "amount": "1.00", "basis": "x"},
            ],
        },
        "segments": [{"name": "biz", "when": {"amount": {"gt": 1}}, "cadence_days": [0],
                      "costs": "five euros"}],
        "experiments": [{"name": "fee", "holdout": 0.1,
                         "variants": [{"name": "A", "set": {"costs": []}}]}],
    }  # fmt: skip
    with pytest.raises(RulesError) as caught:
        parse_rules(bad)
    errors = caught.value.errors
    expected = [
        "defaults.costs[1].colour: unknown key (expected step, type, amount, basis, cap)",
        'defaults.costs[1].type: "lunch" is not one of dunning_fee, collection_fee, '
        "address_inquiry, return_debit_fee, late_payment_flat_fee",
        'defaults.costs[1].amount: expected a decimal above 0 written as text, e.g. "5.00", got 5',
        'defaults.costs[1].basis: name the legal basis shown to the debtor, e.g. "§ 288 Abs. 4 BGB"',
        "defaults.costs[2].step: expected a cadence step, a whole number from 0",
        "defaults.costs[2].cap: 2.00 is below the amount 5.00",
        "defaults.costs[4]: address_inquiry is charged twice at step 1",
        "segments[0] (biz).costs: expected a list of costs, e.g. "
        '[{"step": 1, "type": "dunning_fee", "amount": "5.00", "basis": "…"}]',
        "defaults.costs[0].step: step 5 is never sent (cadence_days [0, 7] has steps 0 to 1)",
        "experiments[0].variants[0].set.costs: costs are the creditor's claim, not an "
        "experiment; set them in defaults or a segment",
    ]
    for line in expected:
        assert line in errors, (line, errors)
    assert len(errors) >= len(expected)


def test_a_segment_that_shortens_the_cadence_cannot_inherit_a_later_step_cost():
    rules = {"defaults": {"costs": [INQUIRY]},
             "segments": [{"name": "quick", "when": {"amount": {"gt": 1}},
                           "cadence_days": [0, 7]}]}  # fmt: skip
    with pytest.raises(RulesError) as caught:
        parse_rules(rules)
    assert caught.value.errors == [
        "segments[0] (quick) (costs from defaults).costs[0].step: step 2 is never sent "
        "(cadence_days [0, 7] has steps 0 to 1)"
    ]


def test_valid_costs_pass_and_reach_the_resolved_treatment(ctx):
    setup(ctx)
    with ctx.db.session() as session:
        from kindly.rules.store import decision_for

        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        treatment = decision_for(session, debtor).treatment
    assert costs.step_costs(treatment, 1) == [DUNNING]
    assert costs.step_costs(treatment, 3) == []


# ---- booking ---------------------------------------------------------------------------------


def test_each_step_books_its_cost_once_and_the_cap_bounds_the_type(ctx):
    setup(ctx)
    run(ctx)
    assert booked(ctx) == [(0, "collection_fee", 1250, "EUR")]
    assert booked(ctx, "A-2") == [(0, "collection_fee", 1250, "GBP")]  # the case's currency
    run(ctx)  # the same day again: the step is done, nothing more
    run(ctx, AT + dt.timedelta(days=7))
    run(ctx, AT + dt.timedelta(days=7, hours=1))
    run(ctx, AT + dt.timedelta(days=14))
    assert booked(ctx) == [
        (0, "collection_fee", 1250, "EUR"),
        (1, "dunning_fee", 500, "EUR"),
        # the cap 7.50 leaves 2.50 of the second dunning fee
        (2, "dunning_fee", 250, "EUR"),
        (2, "address_inquiry", 320, "EUR"),
    ]
    with ctx.db.session() as session:
        ids = [debtor_id(ctx), debtor_id(ctx, "A-2"), debtor_id(ctx, "A-3")]
        totals = costs.booked_minor(session, ids)
        anna = session.get(Debtor, ids[0])
        lines = costs.costs_of(session, anna)
        amount = amounts_on(session, [anna], AT.date())[anna.id]
    assert totals[ids[0]] == 1250 + 500 + 250 + 320
    assert amount.costs_minor == 2320
    assert amount.total_minor == 123456 + 2320
    assert [(x.cost_type, x.basis, x.amount_minor, x.count) for x in lines] == [
        ("collection_fee", "RDG § 13a / RVG VV 2300", 1250, 1),
        ("dunning_fee", "§ 288 Abs. 4 BGB", 750, 2),
        ("address_inquiry", "§ 288 Abs. 4 BGB", 320, 1),
    ]


def test_every_booking_is_an_event_on_the_case_and_marks_its_page_stale(ctx, client):
    from kindly.site import artifacts
    from kindly.site.models import Artifact
    from workers.jobs import render_debtor

    setup(ctx)
    render_debtor(debtor_id(ctx), ["site", "letter"])  # the stored page and letter, no costs
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    assert "data-costs" not in client.get(f"/s/{token}").get_data(as_text=True)
    run(ctx)
    with ctx.db.session() as session:
        marks = session.execute(
            select(Artifact.kind, Artifact.stale_reason).where(
                Artifact.debtor_id == debtor_id(ctx), Artifact.stale_at.is_not(None)
            )
        ).all()
    assert sorted(marks) == [("letter", "costs"), ("site", "costs")]
    # the link shows the cost at once (built live until the worker rebuilds the stored page)
    assert 'data-cost="collection_fee"' in client.get(f"/s/{token}").get_data(as_text=True)
    rebuilt = render_debtor(debtor_id(ctx), ["site", "letter"])
    assert "letter" in rebuilt
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        path = ctx.storage.local_path(artifacts.find(session, anna, "letter").key)
    import subprocess

    letter = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                            text=True).stdout  # fmt: skip
    assert "Inkassokosten" in letter and "RDG § 13a / RVG VV 2300" in letter
    with ctx.db.session() as session:
        rows = session.execute(
            select(Event.data, Event.channel, Event.agent)
            .where(Event.type == "cost", Event.debtor_id == debtor_id(ctx))
        ).all()  # fmt: skip
    assert rows == [
        ({"type": "collection_fee", "amount_minor": 1250, "currency": "EUR",
          "basis": "RDG § 13a / RVG VV 2300", "step": 0}, "email", "automated")
    ]  # fmt: skip


def test_a_retried_or_duplicated_send_job_books_once(ctx):
    setup(ctx)
    anna = debtor_id(ctx)
    # the job runs twice for the same message (a duplicate, or RQ's retry after a timeout)
    first = send_message(anna, 0, "email", AT.isoformat())
    again = send_message(anna, 0, "email", AT.isoformat())
    assert (first, again) == ("outbox", "outbox")
    # a re-plan that picks another channel for the same step books nothing more either
    send_message(anna, 0, "letter", AT.isoformat())
    assert booked(ctx) == [(0, "collection_fee", 1250, "EUR")]


def test_a_failed_send_books_nothing_and_its_retry_books_once(ctx, monkeypatch):
    from kindly.messaging import email as email_channel

    setup(ctx)
    anna = debtor_id(ctx)

    def down(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    with monkeypatch.context() as patch:
        patch.setattr(email_channel, "send_email", down)
        with pytest.raises(ConnectionRefusedError):
            send_message(anna, 0, "email", AT.isoformat())
    assert booked(ctx) == []
    assert send_message(anna, 0, "email", AT.isoformat()) == "outbox"
    assert booked(ctx) == [(0, "collection_fee", 1250, "EUR")]


def test_the_database_refuses_a_second_booking_of_the_same_step(ctx):
    setup(ctx)
    run(ctx)
    with ctx.db.session() as session:
        first = session.scalar(select(CostBooking).where(CostBooking.debtor_id == debtor_id(ctx)))
        session.add(CostBooking(campaign_id=first.campaign_id, debtor_id=first.debtor_id,
                                step=0, cost_type="collection_fee", amount_minor=1,
                                currency="EUR", basis="x"))  # fmt: skip
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()


def test_book_step_again_books_nothing_and_keeps_the_first_amount(ctx):
    setup(ctx)
    run(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        louder = {"costs": [{"step": 0, "type": "collection_fee", "amount": "99.00",
                             "basis": "other"},
                            {"step": 0, "type": "address_inquiry", "amount": "3.00",
                             "basis": "new rules"}]}  # fmt: skip
        # new rules for a step already booked (a re-plan, a second channel after a bounce):
        # neither the same type again nor a type the step did not have then
        assert costs.book_step(session, anna, 0, louder, hold=None) == []
    assert booked(ctx) == [(0, "collection_fee", 1250, "EUR")]


@pytest.mark.parametrize(
    "hold", ["dispute", "breathing_space", "manual", "vulnerable", "paid"]
)  # fmt: skip
def test_nothing_is_booked_while_the_case_is_held_or_paid(ctx, hold):
    setup(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        if hold == "vulnerable":
            anna.attributes = {**(anna.attributes or {}), "vulnerable": "yes"}
        elif hold == "paid":
            manual.record(session, anna, "1234.56", method="cash", on=AT.date(), user=None,
                          via="cli", today=AT.date())  # fmt: skip
        else:
            until = dt.date.today() + dt.timedelta(days=30) if hold == "breathing_space" else None
            holds.place(session, anna, hold, source="cli", until=until)
    planned = run(ctx)
    assert planned["A-1"].status == "held"
    # even a job queued before the hold, running now, books nothing
    assert send_message(debtor_id(ctx), 0, "email", AT.isoformat()) is None
    assert booked(ctx) == []
    assert booked(ctx, "A-2") == [(0, "collection_fee", 1250, "GBP")]


def test_an_amount_the_currency_cannot_carry_is_not_booked(ctx):
    setup(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        anna.currency = "JPY"
        treatment = {"costs": [{"step": 3, "type": "dunning_fee", "amount": "2.50", "basis": "x"}]}
        assert costs.book_step(session, anna, 3, treatment, hold=None) == []
        treatment["costs"][0]["amount"] = "250"
        assert [b.amount_minor for b in costs.book_step(session, anna, 3, treatment,
                                                        hold=None)] == [250]  # fmt: skip


def test_booked_minor_reads_many_cases_in_few_statements(ctx):
    setup(ctx)
    run(ctx)
    with ctx.db.session() as session:
        ids = list(session.scalars(select(Debtor.id)))
        statements = []
        from sqlalchemy import event

        def count(*args):
            statements.append(1)

        event.listen(session.get_bind(), "before_cursor_execute", count)
        try:
            totals = costs.booked_minor(session, ids * 3000)  # duplicates and a long list
        finally:
            event.remove(session.get_bind(), "before_cursor_execute", count)
    assert totals == {ids[0]: 1250, ids[1]: 1250, ids[2]: 1250}
    assert len(statements) == 1
    with ctx.db.session() as session:
        assert costs.booked_minor(session, []) == {}
        assert session.scalar(select(func.count(Send.id))) == 3


# ---- where the debtor and the manager see them ----------------------------------------------


def _book_two_steps(ctx) -> None:
    setup(ctx)
    run(ctx)
    run(ctx, AT + dt.timedelta(days=7))


def test_the_microsite_shows_each_cost_by_type_amount_and_basis(ctx, client):
    import re

    _book_two_steps(ctx)
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    page = client.get(f"/s/{token}").get_data(as_text=True)  # de-DE
    rows = re.findall(
        r'<tr data-cost="(\w+)">\s*<th scope="row">([^<]+)<span class="basis" dir="auto" '
        r'data-basis>([^<]+)</span></th>\s*<td data-cost-amount>([^<]+)</td>', page
    )  # fmt: skip
    assert rows == [
        ("collection_fee", "Inkassokosten", "Rechtsgrundlage: RDG § 13a / RVG VV 2300",
         "12,50\u00a0€"),
        ("dunning_fee", "Mahngebühr", "Rechtsgrundlage: § 288 Abs. 4 BGB", "5,00\u00a0€"),
    ]  # fmt: skip
    assert '<h2 id="costs-title">Kosten</h2>' in page
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-2"))
    english = client.get(f"/s/{token}").get_data(as_text=True)  # en-GB, in pounds
    assert 'data-cost="collection_fee">\n      <th scope="row">Collection costs' in english
    assert "£12.50" in english and "Legal basis: RDG § 13a / RVG VV 2300" in english


def test_a_case_without_costs_shows_no_costs_section(ctx, client):
    load_campaign(ctx)
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "data-costs" not in page and 'class="breakdown"' in page


def test_the_letter_shows_each_cost_by_type_amount_and_basis(ctx):
    from kindly.site.personalise import build_view
    from renderer.letter import default_renderer

    _book_two_steps(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        view = build_view(anna, anna.campaign, base_url="https://pay.example.org")
    assert view.costs == (
        ("collection_fee", "12,50\u00a0€", "RDG § 13a / RVG VV 2300"),
        ("dunning_fee", "5,00\u00a0€", "§ 288 Abs. 4 BGB"),
    )
    html = default_renderer().html(view)
    assert '<div class="costs-title">Kosten</div>' in html
    assert "<span>Inkassokosten</span><b>12,50\u00a0€</b><i>Rechtsgrundlage: " in html
    assert "<span>Mahngebühr</span><b>5,00\u00a0€</b>" in html
    assert "§ 288 Abs. 4 BGB" in html


def test_the_cockpit_case_page_lists_costs_by_type_basis_and_booking(ctx, client):
    import re

    from tests.unit.test_admin import make_user, sign_in

    _book_two_steps(ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    page = client.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    lines = re.findall(
        r'<tr data-cost="(\w+)"><th scope="row">\w+</th><td>([^<]+)</td>'
        r'<td class="num">(\d+)</td><td class="num">([^<]+)</td></tr>', page
    )  # fmt: skip
    assert [(k, b, n) for k, b, n, _ in lines] == [
        ("collection_fee", "RDG § 13a / RVG VV 2300", "1"),
        ("dunning_fee", "§ 288 Abs. 4 BGB", "1"),
    ]
    assert "12.50" in lines[0][3] and "5.00" in lines[1][3]
    assert re.search(r'id="costs-total">[^<]*17\.50', page)
    # each booking is on the timeline too, with its type, amount and basis
    timeline = re.findall(r'<tr data-type="cost">.*?<td>([^<]*)</td></tr>', page)
    assert len(timeline) == 2
    assert "amount_minor: 1250" in timeline[0] and "basis: RDG § 13a / RVG VV 2300" in timeline[0]
    assert "type: dunning_fee" in timeline[1] and "step: 1" in timeline[1]


def test_the_api_timeline_has_every_booking(ctx, client):
    from tests.unit.test_api import auth, key_for

    _book_two_steps(ctx)
    secret = key_for(ctx, "manager")
    answer = client.get("/api/v1/campaigns/winter/debtors/A-1/timeline",
                        headers=auth(secret)).get_json()  # fmt: skip
    costs_seen = [e["data"] for e in answer["events"] if e["type"] == "cost"]
    assert [(c["type"], c["amount_minor"], c["basis"], c["step"]) for c in costs_seen] == [
        ("collection_fee", 1250, "RDG § 13a / RVG VV 2300", 0),
        ("dunning_fee", 500, "§ 288 Abs. 4 BGB", 1),
    ]


# ---- the launch check -----------------------------------------------------------------------


def test_todays_templates_carry_every_cost_fact_in_every_language_and_tone():
    from kindly import launch

    assert launch.check_cost_templates() == []


def test_a_site_text_that_blanks_a_cost_type_is_a_gap():
    from kindly import launch

    overrides = {"*": {"fr": {"cost_dunning_fee": " "}}}
    gaps = launch.check_cost_templates(overrides)
    assert gaps == [launch.Gap("microsite", "fr", tone, "cost type dunning_fee")
                    for tone in launch.TONES]  # fmt: skip


def test_a_letter_that_drops_the_costs_is_named(monkeypatch):
    from kindly import launch
    from renderer import letter

    original = letter.LetterRenderer.html
    monkeypatch.setattr(letter.LetterRenderer, "html",
                        lambda self, view: original(self, dataclasses_replace(view, costs=())))  # fmt: skip
    gaps = launch.check_cost_templates()
    assert {g.template for g in gaps} == {"letter"}
    assert launch.Gap("letter", "de", "firm", "cost legal basis (address_inquiry)") in gaps
    assert len(gaps) == 5 * 3 * 5 * 3  # languages × tones × types × (type, amount, basis)


def dataclasses_replace(view, **changes):
    import dataclasses

    return dataclasses.replace(view, **changes)


def test_the_launch_check_asks_the_cost_facts_only_when_the_rules_charge_costs(ctx):
    from kindly import launch
    from tests.unit.test_admin import ready_to_launch

    load_campaign(ctx)
    ready_to_launch(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        assert launch.check_campaign(session, campaign) == []
        yen = {"defaults": {"costs": [{"step": 0, "type": "dunning_fee", "amount": "2.50",
                                       "basis": "§ 288 Abs. 4 BGB", "cap": "5.005"}]}}  # fmt: skip
        save_rules(session, campaign, parse_rules(yen))
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        session.scalar(select(Debtor).where(Debtor.reference == "A-3")).currency = "JPY"
        session.flush()
        gaps = launch.check_campaign(session, campaign)
        status = launch.change_status(session, campaign, "live", user=None, via="cli")
    assert sorted(str(g) for g in gaps) == [
        "rules (defaults, step 0) [*, *]: no amount of the cost dunning_fee that JPY can carry "
        "(2.50 has more than 0 decimals)",
        "rules (defaults, step 0) [*, *]: no cap of the cost dunning_fee that EUR can carry "
        "(5.005 has more than 2 decimals)",
        "rules (defaults, step 0) [*, *]: no cap of the cost dunning_fee that GBP can carry "
        "(5.005 has more than 2 decimals)",
        "rules (defaults, step 0) [*, *]: no cap of the cost dunning_fee that JPY can carry "
        "(5.005 has more than 0 decimals)",
    ]
    assert status.after == "draft" and status.gaps == gaps


def test_statutory_interest_needs_the_debtors_kind_for_its_rate(ctx):
    from kindly.claims import disclosure

    load_campaign(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        statutory = {"interest": {"basis": "statutory"}}
        assert disclosure.gaps(session, campaign, statutory) == [
            ("rules (interest)", "debtor's kind, consumer or business, for the "
             "statutory rate (3 debtors have no 'debtor_type', and no \"debtor\" default is set)")
        ]  # fmt: skip
        for debtor in session.scalars(select(Debtor)):
            debtor.attributes = {**(debtor.attributes or {}), "debtor_type": "B2C"}
        session.flush()
        assert disclosure.gaps(session, campaign, statutory) == []
        assert disclosure.gaps(session, campaign, {"interest": {"basis": "statutory",
                                                                "debtor": "business"}}) == []  # fmt: skip
        assert disclosure.gaps(session, campaign, {"interest": {"basis": "contractual"}}) == [
            ("rules (interest)", "contractual interest rate")
        ]
        assert disclosure.gaps(session, campaign, {"interest": {"basis": "none"}}) == []


def test_the_privacy_export_lists_the_costs_booked(ctx):
    from kindly import privacy

    setup(ctx)
    run(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        exported = privacy.export_debtor(session, anna.campaign, anna)
    assert [(c["step"], c["cost_type"], c["amount_minor"], c["basis"])
            for c in exported["costs"]] == [(0, "collection_fee", 1250,
                                             "RDG § 13a / RVG VV 2300")]  # fmt: skip
