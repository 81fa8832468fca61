"""APScheduler 3 adapters: a trigger that yields a check's slots, and an executor that hands jobs their slot.

APScheduler 3 does not tell a job when it was *scheduled* to run, only that it runs; the slot must be
the scheduled instant (deterministic across processes), not the moment the event loop got round to it.
:class:`SlotExecutor` passes each job its scheduled run time as its last argument.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.triggers.base import BaseTrigger

from services.scheduler.slots import slot_at_or_after, slot_at_or_before

log = logging.getLogger(__name__)


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires on the check's slots (see :mod:`services.scheduler.slots`).

    After a pause, the next fire time jumps straight to the latest slot that has passed instead of walking
    every missed slot one by one: APScheduler coalesces them into one run anyway, and a 1 s check paused
    for an hour would otherwise cost 3,600 iterations.
    """

    __slots__ = ("check_id", "interval")

    def __init__(self, check_id: uuid.UUID, interval: int) -> None:
        self.check_id = check_id
        self.interval = interval

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        """The first slot at or after ``now``, or the slot after ``previous_fire_time`` (or the latest)."""
        if previous_fire_time is None:
            return slot_at_or_after(self.check_id, self.interval, now)
        following = previous_fire_time.astimezone(UTC) + timedelta(seconds=self.interval)
        return max(following, slot_at_or_before(self.check_id, self.interval, now))

    def __str__(self) -> str:
        return f"slots[interval={self.interval}s]"

    def __repr__(self) -> str:
        return f"<SlotTrigger check_id={self.check_id} interval={self.interval}>"


class SlotExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs coroutine jobs on the running event loop as ``job.func(*job.args, slot=<scheduled run time>)``.

    Jobs are added with ``kwargs={"slot": None}`` (APScheduler insists that every parameter is supplied
    when a job is added); the executor replaces it with the run time.

        Honors ``misfire_grace_time`` like APScheduler's own executors: a run time older than the grace is
        reported missed and not run.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tasks: set[asyncio.Task[list[Any]]] = set()

    def shutdown(self, wait: bool = True) -> None:
        """Cancel runs in flight (a coroutine executor cannot block to wait for them)."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job, list(run_times)))
        self._tasks.add(task)
        job_id = job.id

        def done(finished: asyncio.Task[list[Any]]) -> None:
            self._tasks.discard(finished)
            failed = finished.cancelled() or finished.exception() is not None
            events = [] if failed else finished.result()
            self._run_job_success(job_id, events)

        task.add_done_callback(done)

    async def _run(self, job: Any, run_times: list[datetime]) -> list[Any]:
        events: list[Any] = []
        for run_time in run_times:
            if job.misfire_grace_time is not None:
                late = datetime.now(UTC) - run_time
                if late > timedelta(seconds=job.misfire_grace_time):
                    log.debug("slot missed job=%s late_s=%.3f", job.id, late.total_seconds())
                    events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time))
                    continue
            try:
                await job.func(*job.args, **{**job.kwargs, "slot": run_time})
            except Exception as exc:
                log.exception("job failed job=%s slot=%s", job.id, run_time)
                events.append(
                    JobExecutionEvent(
                        EVENT_JOB_ERROR,
                        job.id,
                        job._jobstore_alias,
                        run_time,
                        exception=exc,
                        traceback="".join(traceback.format_tb(exc.__traceback__)),
                    )
                )
            else:
                events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time))
        return events
