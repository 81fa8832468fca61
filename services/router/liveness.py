"""Which regions have a live runner, as last told by heartbeats (kept in memory by each router)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunnerLiveness:
    """Region → monotonic time of its last heartbeat; a region is live while it is recent enough."""

    stale_after: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, float] = field(default_factory=dict)

    def saw(self, region: str, interval_s: float) -> None:
        """Record a heartbeat from ``region`` (announced every ``interval_s`` seconds)."""
        self._seen[region] = self.clock()

    def is_live(self, region: str) -> bool:
        """Whether a runner of ``region`` spoke within ``stale_after`` seconds."""
        seen = self._seen.get(region)
        return seen is not None and self.clock() - seen <= self.stale_after
