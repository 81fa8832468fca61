"""The runner's heartbeat: how home learns that a region has a live runner, and how busy it is."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import services
from contracts.v1 import RunnerHeartbeat
from contracts.v1.base import utcnow
from services.common.bus import Publisher
from services.common.tasks import cancel_and_wait
from services.runner.handlers import Load

log = logging.getLogger(__name__)


def default_runner_id() -> str:
    """``<hostname>-<pid>-<random>``: unique per process, readable in the UI."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Heartbeat:
    """Publishes ``RunnerHeartbeat`` at start and then every ``interval`` seconds until stopped.

    A failed publish is logged and retried at the next beat: a missing heartbeat is what tells home the
    runner is in trouble, so the loop itself never dies of it.
    """

    def __init__(
        self,
        publisher: Publisher,
        *,
        runner_id: str,
        region: str,
        capacity: int,
        interval: float,
        load: Load,
    ) -> None:
        self.runner_id = runner_id
        self._publisher = publisher
        self._region = region
        self._capacity = capacity
        self._interval = interval
        self._load = load
        self._started_at = utcnow()
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> RunnerHeartbeat:
        """The heartbeat as of now."""
        return RunnerHeartbeat(
            runner_id=self.runner_id,
            region=self._region,
            runner_version=services.__version__,
            capacity=self._capacity,
            in_flight=self._load.in_flight,
            started_at=self._started_at,
            interval_s=self._interval,
        )

    async def start(self) -> None:
        """Start beating (the first beat goes out at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"heartbeat-{self.runner_id}")

    async def stop(self) -> None:
        """Stop beating."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self._publisher.publish(self.beat())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat publish failed runner_id=%s error=%s", self.runner_id, exc)
            await asyncio.sleep(self._interval)
