"""A warm (in-process) worker starts afresh after KINDLY_WORKER_MAX_JOBS jobs, to give back the
memory a job leaves behind: the same process (exec keeps the pid), and no job lost or run
twice across the restarts."""

from __future__ import annotations

import pytest

from tests.integration.test_job_wait import double
from tests.reliability.conftest import start_worker, stop, wait_for
from workers.queues import DEFAULT, Dispatcher

pytestmark = pytest.mark.integration


def test_a_worker_starts_afresh_after_its_jobs_and_loses_none(stack, stack_env):
    from rq import Queue, Worker

    dispatcher = Dispatcher(stack.settings)
    queue = Queue(DEFAULT, connection=dispatcher.redis)
    process = start_worker(stack_env | {"KINDLY_WORKER_MAX_JOBS": "3"}, DEFAULT)
    try:
        wait_for(lambda: Worker.count(queue=queue) == 1, 60, "the worker")
        first = Worker.all(queue=queue)[0]
        assert first.pid == process.pid
        handles = [
            dispatcher.enqueue(double, (n,), queue=DEFAULT, job_id=f"recycle-{n}", timeout=10)
            for n in range(8)
        ]
        wait_for(lambda: all(h.refresh() == "finished" for h in handles), 120, "every job")
        assert [h.rq_job.return_value(refresh=True) for h in handles] == [2 * n for n in range(8)]
        assert all(len(h.rq_job.results()) == 1 for h in handles)  # each ran once
        wait_for(lambda: Worker.count(queue=queue) == 1, 60, "the fresh worker")
        now = Worker.all(queue=queue)[0]
        assert process.poll() is None and now.pid == process.pid  # the same process
        assert now.name != first.name  # ...started afresh (8 jobs, 3 per life: 2 restarts)
    finally:
        stop(process)
