"""Liveness for services without an HTTP port: a file touched while the process and its bus are well.

Container healthchecks (``seymour health``) read its age. The file is touched only while the bus says
it is connected, so a worker cut off from its broker turns unhealthy instead of looking alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from services.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class HealthBeat:
    """Touches ``path`` every ``interval`` seconds while ``healthy()`` holds (a Lifecycle)."""

    def __init__(self, path: Path, interval: float, healthy: Callable[[], bool]) -> None:
        self.path = path
        self._interval = interval
        self._healthy = healthy
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Beat now, then every interval."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="health-beat")

    async def stop(self) -> None:
        """Stop beating and remove the file: a stopped process is not healthy."""
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _run(self) -> None:
        while True:
            if self._healthy():
                self.path.touch()
            else:
                log.warning("not healthy: the bus is not connected file=%s", self.path)
            await asyncio.sleep(self._interval)


def age_of(path: Path) -> float | None:
    """Seconds since ``path`` was last touched, or ``None`` if it does not exist."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
