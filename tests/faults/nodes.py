"""RabbitMQ nodes of the fault suite's own: home and a region, each a node this suite starts and stops.

A node can be stopped and started again keeping its data (``rabbitmqctl stop``, then the same node name,
data directory and cookie), which is what a broker restart is; the machine's shared broker is never touched.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass

from contracts.topology import DEAD_LETTER_QUEUE
from tests.support.rabbit_node import RabbitNode


@dataclass
class Node(RabbitNode):
    """A :class:`RabbitNode` that can :meth:`halt` and be started again with its data."""

    def _write_files(self) -> None:
        if not (self.base / "rabbitmq.conf").exists():  # a restart keeps the cookie and the data
            super()._write_files()

    def halt(self) -> None:
        """Stop the node (its data stays); :meth:`start` brings it back."""
        process, self.process = self.process, None
        if process is None:
            return
        self.ctl("stop", timeout=60)
        process.wait(timeout=60)

    async def queues(self, vhost: str = "/") -> dict[str, tuple[int, int]]:
        """Every queue of ``vhost``: (messages, consumers), as the node counts them now (``rabbitmqctl``;
        the management API's figures are sampled every few seconds)."""
        listed = await asyncio.to_thread(
            self.ctl, "list_queues", "-p", vhost, "name", "messages", "consumers", "--no-table-headers", "-q"
        )
        found: dict[str, tuple[int, int]] = {}
        for line in listed.stdout.splitlines():
            name, messages, consumers = line.rsplit("\t", 2)
            found[name] = (int(messages), int(consumers))
        return found

    async def unconsumed(self, vhost: str = "/") -> list[str]:
        """Queues that should have a consumer and have none (the dead letters wait for an operator)."""
        try:
            queues = await self.queues(vhost)
        except (subprocess.SubprocessError, ValueError) as exc:
            return [f"rabbitmqctl: {exc!r}"]
        return sorted(
            name for name, (_, consumers) in queues.items() if name != DEAD_LETTER_QUEUE and not consumers
        )
