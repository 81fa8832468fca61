"""What a composition root hands back: the routes to subscribe and the background work to run.

Every service's ``main.build(...)`` returns a :class:`Service`. ``seymour serve <name>`` runs one of
them on RabbitMQ + PostgreSQL; ``seymour up`` runs all of them in one process on the in-process bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from services.common.bus import Route


class Lifecycle(Protocol):
    """Background work a service runs besides its consumers (flushers, heartbeats, timers)."""

    async def start(self) -> None:
        """Begin the work; return promptly."""
        ...

    async def stop(self) -> None:
        """Finish or flush what is in flight, then stop."""
        ...


@dataclass
class Service:
    """A built service: consumers to subscribe, and lifecycles (timers, flushers, servers).

    The runtime starts the bus (consumers and publishing) first and the lifecycles after it, so a
    lifecycle may publish from its ``start``; on the way down consumers stop first, then lifecycles.
    """

    name: str
    routes: list[Route] = field(default_factory=list)
    lifecycles: list[Lifecycle] = field(default_factory=list)

    async def start(self) -> None:
        """Start the lifecycles (the caller has subscribed ``routes`` and started its bus)."""
        for lifecycle in self.lifecycles:
            await lifecycle.start()

    async def stop(self) -> None:
        """Stop the lifecycles in reverse order."""
        for lifecycle in reversed(self.lifecycles):
            await lifecycle.stop()
