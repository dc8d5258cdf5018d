"""Costs by step on PostgreSQL, with the send path on real RQ over Redis: a step's cost is
booked once whatever retries, duplicated jobs, re-plans, restarts or concurrent workers do,
never while the case is held, and never beyond its cap."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases import holds
from kindly.claims import costs
from kindly.claims.cost_booking import CostBooking
from kindly.messaging import delivery
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support.app import installed, launched, load_campaign, make_settings
from workers.queues import SEND, Dispatcher
from workers.send import enqueue_sends, job_id, send_message

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
FEE = {"type": "dunning_fee", "amount": "5.00", "basis": "§ 288 Abs. 4 BGB", "cap": "7.50"}
RULES = {
    "defaults": {
        "channels": ["email", "sms", "letter"], "cadence_days": [0, 7, 14],
        "costs": [{"step": 0, "type": "collection_fee", "amount": "12.50",
                   "basis": "RDG § 13a / RVG VV 2300"},
                  {**FEE, "step": 1}, {**FEE, "step": 2}],
    }
}  # fmt: skip


@pytest.fixture
def pg(tmp_path, postgres_url, redis_url):
    """A live campaign on PostgreSQL whose sends go through RQ on Redis."""
    settings = make_settings(
        Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url, KINDLY_REDIS_URL=redis_url
    )
    with installed(settings) as context:
        load_campaign(context)
        launched(context)
        with context.db.session() as session:
            campaign = session.scalar(select(Campaign))
            decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
        yield context
        context.close()


def work(ctx) -> list:
    """An RQ worker over the send queue until it is empty; the jobs' results."""
    from rq import Queue, SimpleWorker

    connection = Dispatcher(ctx.settings).redis
    queue = Queue(SEND, connection=connection)
    ids = queue.job_ids
    SimpleWorker([queue], connection=connection).work(burst=True)
    return [queue.fetch_job(i).return_value() for i in ids]


def plan_and_queue(ctx, at: dt.datetime = AT) -> list[delivery.Planned]:
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), at)
    enqueue_sends(Dispatcher(ctx.settings), planned, at)
    return planned


def rows(ctx, reference: str = "A-1") -> list[tuple[int, str, int]]:
    with ctx.db.session() as session:
        return [
            (b.step, b.cost_type, b.amount_minor)
            for b in session.scalars(
                select(CostBooking)
                .join(Debtor, Debtor.id == CostBooking.debtor_id)
                .where(Debtor.reference == reference)
                .order_by(CostBooking.step, CostBooking.id)
            )
        ]


def anna(ctx) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.id).where(Debtor.reference == "A-1"))


def test_rq_jobs_retried_duplicated_replanned_and_rerun_book_each_step_once(pg):
    plan_and_queue(pg)
    plan_and_queue(pg)  # the same plan enqueued twice while the first is still waiting
    assert work(pg).count("outbox") == 2  # by email; A-3 has none (letter: print)
    assert rows(pg) == [(0, "collection_fee", 1250)]
    # the same job ids again after they finished (a re-plan, a worker restarted)
    dispatcher = Dispatcher(pg.settings)
    dispatcher.enqueue(send_message, (anna(pg), 0, "email", AT.isoformat()), queue=SEND,
                       job_id=job_id(anna(pg), 0, "email"), timeout=120, again=True)  # fmt: skip
    dispatcher.enqueue(send_message, (anna(pg), 0, "sms", AT.isoformat()), queue=SEND,
                       job_id=job_id(anna(pg), 0, "sms"), timeout=120, again=True)  # fmt: skip
    work(pg)
    plan_and_queue(pg)  # re-planned the same day: nothing is due
    work(pg)
    assert rows(pg) == [(0, "collection_fee", 1250)]
    for days in (7, 7, 14, 14, 21):
        plan_and_queue(pg, AT + dt.timedelta(days=days))
        work(pg)
    # 5.00 at step 1, and the cap of 7.50 leaves 2.50 at step 2
    assert rows(pg) == [(0, "collection_fee", 1250), (1, "dunning_fee", 500),
                        (2, "dunning_fee", 250)]  # fmt: skip
    assert rows(pg, "A-3") == [
        (0, "collection_fee", 1250),
        (1, "dunning_fee", 500),
        (2, "dunning_fee", 250),
    ]  # fmt: skip (letters: print rows)
    with pg.db.session() as session:
        everyone = dict(session.execute(select(Debtor.reference, Debtor.id)).all())
        totals = costs.booked_minor(session, [*everyone.values(), *everyone.values()])
        assert totals == {everyone["A-1"]: 2000, everyone["A-2"]: 2000, everyone["A-3"]: 2000}
        # a cost in another currency than the case's (re-imported in pounds) is not counted
        session.get(Debtor, everyone["A-3"]).currency = "GBP"
        session.flush()
        assert everyone["A-3"] not in costs.booked_minor(session, list(everyone.values()))
        events = session.scalars(
            select(Event.type).where(Event.debtor_id == anna(pg), Event.type == "cost")
        ).all()
    assert len(events) == 3


def test_two_concurrent_bookings_of_the_same_step_make_one_row(pg):
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def book() -> None:
        try:
            with pg.db.session() as session:
                debtor = session.get(Debtor, anna(pg))
                barrier.wait(timeout=10)
                booked = costs.book_step(session, debtor, 0, RULES["defaults"], hold=None)
                results.append(len(booked))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=book) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [0, 1]
    assert rows(pg) == [(0, "collection_fee", 1250)]


def test_two_workers_sending_one_step_on_two_channels_at_once_book_it_once(pg):
    barrier = threading.Barrier(2)
    statuses: list[str | None] = []

    def send(channel: str) -> None:
        barrier.wait(timeout=10)
        statuses.append(send_message(anna(pg), 0, channel, AT.isoformat()))

    threads = [threading.Thread(target=send, args=(c,)) for c in ("email", "sms")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == ["outbox", "outbox"]  # both messages went (as the send key allows)
    assert rows(pg) == [(0, "collection_fee", 1250)]


def test_the_database_itself_refuses_a_second_row_for_a_step(pg):
    plan_and_queue(pg)
    work(pg)
    with pg.db.engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(
            text(
                "INSERT INTO cost_booking (campaign_id, debtor_id, step, cost_type, "
                "amount_minor, currency, basis, rule_version, booked_at) SELECT campaign_id, "
                "debtor_id, step, cost_type, 1, currency, basis, 0, now() FROM cost_booking "
                "WHERE debtor_id = :id"
            ),
            {"id": anna(pg)},
        )


def test_concurrent_steps_of_one_type_never_book_beyond_its_cap(pg):
    barrier = threading.Barrier(2)

    def book(step: int) -> None:
        with pg.db.session() as session:
            debtor = session.get(Debtor, anna(pg))
            barrier.wait(timeout=10)
            costs.book_step(session, debtor, step, RULES["defaults"], hold=None)

    threads = [threading.Thread(target=book, args=(s,)) for s in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(amount for _, _, amount in rows(pg)) == 750  # 5.00 + 2.50, in either order


def test_a_dispute_raised_while_the_message_is_on_its_way_books_nothing(pg, monkeypatch):
    from kindly.messaging import email as email_channel

    real = email_channel.send_email

    def disputed_meanwhile(*args, **kwargs):
        with pg.db.session() as other:
            debtor = other.get(Debtor, anna(pg))
            holds.place(other, debtor, "dispute", source="page")
        return real(*args, **kwargs)

    monkeypatch.setattr(email_channel, "send_email", disputed_meanwhile)
    assert send_message(anna(pg), 0, "email", AT.isoformat()) == "outbox"
    assert rows(pg) == []
    # and once the dispute is answered, the next step books as usual
    monkeypatch.setattr(email_channel, "send_email", real)
    with pg.db.session() as session:
        debtor = session.get(Debtor, anna(pg))
        holds.release(session, debtor, holds.open_holds(session, debtor)[0].id, by="m@x")
    assert send_message(anna(pg), 1, "email", (AT + dt.timedelta(days=7)).isoformat())
    assert rows(pg) == [(1, "dunning_fee", 500)]
