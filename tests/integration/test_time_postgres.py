"""Time within the rules on PostgreSQL: the same scenarios as tests/unit (moves, payment day,
the missed-instalment rule once, breathing space), the migration down and up, and two
reports of one miss at the same moment moving the instalment once."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from kindly.infra.db import MIGRATIONS
from kindly.payments import changes, reschedule
from kindly.payments.models import Instalment, Plan
from tests.support.app import installed, load_campaign, make_settings
from tests.unit import test_time_within_rules as time_tests

pytestmark = pytest.mark.integration


@pytest.fixture
def pg(tmp_path: Path, postgres_url: str):
    settings = make_settings(tmp_path / "var", KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as context:
        load_campaign(context)
        yield context


@pytest.mark.parametrize(
    "scenario",
    [
        time_tests.scenario_moves_inside_and_outside_the_rules,
        time_tests.scenario_payment_day_and_its_new_schedule,
        time_tests.scenario_missed_instalment_moves_once_then_breaks,
        time_tests.scenario_a_later_miss_after_a_payment_is_retried_not_moved_again,
        time_tests.scenario_breathing_space_once_per_period_and_hardship,
        time_tests.scenario_hardship_stops_plan_charges,
        time_tests.scenario_the_daily_job_run_twice_moves_a_miss_once,
    ],
)
def test_scenario_on_postgres(pg, scenario):
    scenario(pg)


def test_two_reports_of_a_miss_at_once_move_it_to_the_end_once(pg):
    plan_id = time_tests.agree_plan(pg, count=3)
    start, errors, moved = threading.Barrier(2), [], []

    def report() -> None:
        try:
            with pg.db.session() as session:
                plan = session.get(Plan, plan_id)
                instalment = session.scalar(select(Instalment).where(Instalment.seq == 2))
                start.wait()
                moved.append(reschedule.move_to_end(session, plan, instalment))
        except BaseException as exc:  # a lock wait or a refused insert: reported below
            errors.append(exc)

    threads = [threading.Thread(target=report) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(moved) == [False, True]
    with pg.db.session() as session:
        assert changes.count(session, plan_id, "missed_to_end") == 1
    assert [seq for seq, _, _ in time_tests.schedule(pg)] == [1, 2, 3]


def test_the_migration_goes_down_and_up(pg):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def run(action, revision: str) -> None:
        with pg.db.engine.begin() as conn:
            config.attributes["connection"] = conn
            action(config, revision)

    run(command.downgrade, "1002")
    tables = inspect(pg.db.engine).get_table_names()
    columns = [c["name"] for c in inspect(pg.db.engine).get_columns("payment_plan")]
    assert "plan_change" not in tables and "missed_to_end" not in columns
    run(command.upgrade, "heads")
    indexes = {i["name"]: i for i in inspect(pg.db.engine).get_indexes("plan_change")}
    assert indexes["ux_plan_change_missed_once"]["unique"]
    assert dt.date.today()  # the scenarios above ran on the upgraded schema
