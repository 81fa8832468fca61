"""Queue depths for admission, read on a broker connection of the probe's own.

AMQP has no way to ask whether a queue exists other than a passive declare, and a passive declare of a
missing queue closes the channel it was sent on; on the bus's own channel that would break its
declarations for good. A region behind its own broker has no runner queue on home, so its first probe
fails: here that costs only this probe's connection, which is dropped and opened again on the next look,
and :class:`services.router.admission.Admission` stops probing that region for a while.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class ProbeBus(Protocol):
    """The part of a broker adapter the probe uses."""

    async def start(self) -> None:
        """Connect."""
        ...

    async def stop(self) -> None:
        """Disconnect."""
        ...

    async def queue_depth(self, queue: str) -> int:
        """Ready messages in ``queue`` (raises, and may break the connection, if it does not exist)."""
        ...


class BrokerProbe:
    """A :class:`services.router.admission.DepthProbe` on a connection it opens lazily and drops after any
    failure."""

    def __init__(self, connect: Callable[[], ProbeBus]) -> None:
        self._connect = connect
        self._bus: ProbeBus | None = None

    async def queue_depth(self, queue: str) -> int:
        """Ready messages in ``queue``; a failure drops the connection and raises."""
        if self._bus is None:
            bus = self._connect()
            await bus.start()
            self._bus = bus
        try:
            return await self._bus.queue_depth(queue)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the connection, if open."""
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(Exception):
                await bus.stop()


class InProcessProbe:
    """A :class:`services.router.admission.DepthProbe` on the in-process bus of ``seymour up``: the
    runner there shares the process, so an offer above what it runs grows the region's queue in memory
    (runs started late, then expired) exactly as a broker's queue would. Asking costs a dict lookup."""

    def __init__(self, bus: ProbeBus) -> None:
        self._bus = bus

    async def queue_depth(self, queue: str) -> int:
        """Messages waiting in ``queue``; raises for a queue the bus does not hold."""
        return await self._bus.queue_depth(queue)

    async def stop(self) -> None:
        """Nothing to release: the bus belongs to the process."""
