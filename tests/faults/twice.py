"""``python -m tests.faults.twice serve <service>``: ``seymour serve`` whose every publish can go out twice.

The fault suite starts every service through this wrapper. Off (the default) it is ``seymour serve``
unchanged; after ``SIGUSR1`` every message the process publishes on RabbitMQ is published a second time
once the first is confirmed (what a publisher that retries after a lost confirm does), until ``SIGUSR2``.
Every queue then receives every message twice, with nothing to tell the copies apart.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

from services.cli import main
from services.common.bus.rabbit import RabbitBus

_twice = False
_publish = RabbitBus.publish


async def _publish_twice(self: RabbitBus, *args: Any, **kwargs: Any) -> None:
    await _publish(self, *args, **kwargs)
    if _twice:
        await _publish(self, *args, **kwargs)


def _switch(signum: int, _frame: FrameType | None) -> None:
    global _twice
    _twice = signum == signal.SIGUSR1


if __name__ == "__main__":
    RabbitBus.publish = _publish_twice  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _switch)
    signal.signal(signal.SIGUSR2, _switch)
    sys.exit(main())
