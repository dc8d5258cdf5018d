"""The local event journal and its shipper on SQLite: records stored exactly once, segments
deleted only once closed and stored, the fallbacks when the journal can't take a hit."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Debtor
from kindly.infra.config import ConfigError
from kindly.infra.fsync import FsyncPolicy, parse_fsync
from kindly.tracking.eventbuffer import pending
from kindly.tracking.journal import Journal, encode, is_segment
from kindly.tracking.models import Event
from kindly.tracking.shipper import Shipper, lag
from kindly.tracking.sink import EventSink
from tests.support.app import load_campaign, make_settings


@pytest.fixture
def debtor(ctx) -> Debtor:
    load_campaign(ctx)
    with ctx.db.session() as session:
        found = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        session.expunge(found)
        return found


def stored(ctx, type_: str | None = None) -> dict[str, int]:
    """Stored events per idempotency key (of one type, if given)."""
    with ctx.db.session() as session:
        query = select(Event.idempotency_key, func.count()).group_by(Event.idempotency_key)
        if type_:
            query = query.where(Event.type == type_)
        return dict(session.execute(query).all())


def segments(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if is_segment(name))


def test_fsync_policies_parse_and_bad_ones_are_refused(tmp_path):
    assert parse_fsync("always") == FsyncPolicy("always")
    assert parse_fsync("never") == FsyncPolicy("never")
    assert parse_fsync("100ms") == FsyncPolicy("interval", 100)
    assert parse_fsync("2s") == FsyncPolicy("interval", 2000)
    for bad in ("sometimes", "0ms", "-5ms", "61s", ""):
        with pytest.raises(ValueError):
            parse_fsync(bad)
    with pytest.raises(ConfigError, match="KINDLY_JOURNAL_FSYNC"):
        make_settings(tmp_path / "var", KINDLY_JOURNAL="on", KINDLY_JOURNAL_FSYNC="often")
    settings = make_settings(tmp_path / "var", KINDLY_JOURNAL="on")
    assert settings.journal == (tmp_path / "var" / "journal").resolve()
    assert settings.journal_fsync == "100ms"
    assert make_settings(tmp_path / "var").journal is None


@pytest.mark.parametrize("policy", ["always", "10ms", "never"])
def test_journaled_hits_are_stored_once_and_closed_segments_deleted(ctx, debtor, tmp_path,
                                                                    policy):  # fmt: skip
    folder = tmp_path / "journal"
    journal = Journal(folder, fsync=policy, segment_bytes=2_000)  # a segment every few records
    keys = []
    for n in range(40):
        event = pending(debtor, "opened", channel="email", key=f"opened:{policy}:{n}")
        keys.append(event["idempotency_key"])
        assert journal.append(event)
    assert len(segments(folder)) > 3
    shipper = Shipper(folder, ctx.db)
    assert shipper.acquire()
    assert shipper.drain() == 40
    assert stored(ctx, "opened") == dict.fromkeys(keys, 1)
    # the closed segments are gone; the one this process still appends to stays, all stored
    left = segments(folder)
    assert len(left) == 1
    assert lag(folder).unshipped_records == 0
    journal.close()
    # closed now (its lock may outlive close() by an fsync under way in the sync thread)
    for _ in range(100):
        assert shipper.drain() == 0
        if not segments(folder):
            break
        time.sleep(0.02)
    assert segments(folder) == []
    shipper.release()


def test_an_offset_lost_after_the_commit_offers_the_batch_again_and_it_is_stored_once(
    ctx, debtor, tmp_path
):
    folder = tmp_path / "journal"
    journal = Journal(folder)
    for n in range(10):
        journal.append(pending(debtor, "opened", key=f"opened:{n}"))
    journal.close()
    shipper = Shipper(folder, ctx.db)
    shipper.acquire()
    [name] = segments(folder)
    # as if the shipper died between the commit and writing its offset
    from kindly.tracking.shipper import store

    store(ctx.db, (folder / name).read_bytes().splitlines())
    assert shipper.drain() == 10  # offered again
    assert stored(ctx, "opened") == {f"opened:{n}": 1 for n in range(10)}
    assert segments(folder) == []


def test_one_shipper_per_folder(ctx, tmp_path):
    folder = tmp_path / "journal"
    first, second = Shipper(folder, ctx.db), Shipper(folder, ctx.db)
    assert first.acquire()
    assert not second.acquire()
    assert lag(folder).shipper_running
    first.release()
    assert second.acquire()
    second.release()


def test_a_torn_last_record_of_a_closed_segment_is_ignored(ctx, debtor, tmp_path):
    folder = tmp_path / "journal"
    journal = Journal(folder)
    journal.append(pending(debtor, "opened", key="opened:whole"))
    journal.close()
    [name] = segments(folder)
    with open(folder / name, "ab") as handle:  # what a write cut short by a full disk leaves
        handle.write(encode(pending(debtor, "opened", key="opened:torn"))[:40])
    shipper = Shipper(folder, ctx.db)
    shipper.acquire()
    assert shipper.drain() == 1
    assert stored(ctx, "opened") == {"opened:whole": 1}
    assert segments(folder) == []


def test_over_its_limit_the_journal_refuses_and_the_hit_is_stored_synchronously(
    ctx, debtor, tmp_path, caplog
):
    folder = tmp_path / "journal"
    journal = Journal(folder, limit_bytes=1_000)
    sink = EventSink(journal, None, ctx.db)  # no Redis: the database directly
    for n in range(20):
        sink.add(pending(debtor, "opened", key=f"opened:{n}"))
        journal._checked_at = 0.0  # count the backlog on every hit (once a second in use)
    assert journal.fallbacks > 0
    assert "event journal over its limit" in caplog.text
    direct = len(stored(ctx, "opened"))
    assert direct == journal.fallbacks
    shipper = Shipper(folder, ctx.db)
    shipper.acquire()
    shipper.drain()
    assert stored(ctx, "opened") == {f"opened:{n}": 1 for n in range(20)}


def test_an_unwritable_folder_sends_hits_the_synchronous_way(ctx, debtor, tmp_path):
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the journal's folder should be")
    sink = EventSink(Journal(folder), None, ctx.db)
    sink.add(pending(debtor, "opened", key="opened:1"))
    sink.add(pending(debtor, "opened", key="opened:2"))
    assert stored(ctx, "opened") == {"opened:1": 1, "opened:2": 1}


def test_a_burst_over_every_link_is_settled_by_the_shipper(ctx, debtor, tmp_path):
    folder = tmp_path / "journal"
    sink = EventSink(Journal(folder), None, ctx.db)
    now = dt.datetime.now(dt.UTC).timestamp()
    for n, link in enumerate(["site", "pay", "plan"]):  # three links within a second
        event = pending(debtor, "clicked", agent="human", data={"to": link}, key=f"c:{n}")
        sink.add(event, burst=(link, now + n * 0.1))
    later = pending(debtor, "clicked", agent="human", data={"to": "site"}, key="c:later")
    sink.add(later, burst=("site", now + 60))  # a minute later: a person again
    shipper = Shipper(folder, ctx.db)
    shipper.acquire()
    shipper.drain()
    with ctx.db.session() as session:
        agents = dict(session.execute(select(Event.idempotency_key, Event.agent)).all())
    assert agents == {"c:0": "human", "c:1": "human", "c:2": "automated", "c:later": "human"}


def test_threads_appending_at_once_never_mix_their_records(ctx, debtor, tmp_path):
    folder = tmp_path / "journal"
    journal = Journal(folder, fsync="never", segment_bytes=50_000)

    def hammer(thread: int) -> None:
        for n in range(200):
            journal.append(pending(debtor, "opened", key=f"opened:{thread}:{n}"))

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    journal.close()
    shipper = Shipper(folder, ctx.db)
    shipper.acquire()
    assert shipper.drain() == 800
    assert len(stored(ctx, "opened")) == 800
    assert set(stored(ctx, "opened").values()) == {1}
