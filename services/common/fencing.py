"""Epoch fencing: a consumer of ``CheckDue`` drops slots fired by a scheduler leader that was deposed.

Every new leader bumps ``scheduler_lease.epoch`` and stamps it on each ``CheckDue``. A leader that froze
(SIGSTOP, a long GC pause, a VM migration) and wakes up may fire before it notices it lost the lock; its
messages carry an older epoch than the new leader's, and :class:`EpochFence` refuses them. Pure and
in-memory: one fence per consuming process; after a restart it learns the current epoch from the first
message it sees.
"""

from __future__ import annotations

import logging

from contracts.v1 import CheckDue

log = logging.getLogger(__name__)


class EpochFence:
    """Admits a scheduler epoch unless a higher one has already been seen."""

    def __init__(self, highest: int = 0) -> None:
        self._highest = highest
        self.rejected = 0

    @property
    def highest(self) -> int:
        """The highest epoch admitted so far."""
        return self._highest

    def admit(self, epoch: int) -> bool:
        """True if ``epoch`` is at least the highest seen (and remember it); False for a stale leader."""
        if epoch >= self._highest:
            if epoch > self._highest and self._highest:
                log.info("scheduler epoch advanced previous=%d epoch=%d", self._highest, epoch)
            self._highest = epoch
            return True
        self.rejected += 1
        log.debug("stale scheduler epoch epoch=%d highest=%d", epoch, self._highest)
        return False

    def admit_due(self, message: CheckDue) -> bool:
        """Fence a ``CheckDue``: only scheduled slots carry a leader's epoch; manual ones always pass."""
        if message.trigger != "scheduled":
            return True
        return self.admit(message.epoch)
