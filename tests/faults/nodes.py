"""RabbitMQ nodes of the fault suite's own: home and a region, each a node this suite starts and stops.

A node can be stopped and started again keeping its data (``rabbitmqctl stop``, then the same node name,
data directory and cookie), which is what a broker restart is; the machine's shared broker is never touched.
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass
from typing import Final

import aio_pika
import aiohttp

from contracts.topology import DEAD_LETTER_QUEUE
from tests.support.rabbit_node import RabbitNode

#: How often the suite's nodes emit the statistics the management API reports for a classic queue
#: (RabbitMQ's default is 5 s): the figures of a queue a passive declare cannot name.
STATS_INTERVAL_MS: Final = 1000
GUEST: Final = {"Authorization": f"Basic {base64.b64encode(b'guest:guest').decode()}"}


@dataclass
class Node(RabbitNode):
    """A :class:`RabbitNode` that can :meth:`halt` and be started again with its data."""

    def _write_files(self) -> None:
        if not (self.base / "rabbitmq.conf").exists():  # a restart keeps the cookie and the data
            super()._write_files()
            with (self.base / "rabbitmq.conf").open("a") as conf:
                conf.write(f"collect_statistics_interval = {STATS_INTERVAL_MS}\n")

    def halt(self) -> None:
        """Stop the node (its data stays); :meth:`start` brings it back."""
        process, self.process = self.process, None
        if process is None:
            return
        self.ctl("stop", timeout=60)
        process.wait(timeout=60)

    async def queues(self, vhost: str = "/") -> dict[str, tuple[int, int]]:
        """Every queue of ``vhost``: (messages ready, consumers), as each queue answers now.

        The names come from the node's management API; the figures from a passive declare of each queue
        over AMQP, the queue's own answer. The API's figures are statistics the node emits every few
        seconds (a quorum queue's every 5 s), too stale for a 3 s cut; ``rabbitmqctl`` is exact but boots
        an Erlang VM per call (~0.5 s of CPU on these two cores, in the middle of the load being measured).
        A queue the declare cannot name or reach (a federation buffer's name has spaces, which the AMQP
        client refuses; another connection's exclusive queue) keeps the API's figures.
        """
        url = f"{self.api_url}/api/queues/{urllib.parse.quote(vhost, safe='')}"
        async with (
            aiohttp.ClientSession(headers=GUEST, timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(url, params={"columns": "name,messages_ready,consumers"}) as response,
        ):
            response.raise_for_status()
            listed = await response.json()
        found = {q["name"]: (int(q.get("messages_ready") or 0), int(q.get("consumers") or 0)) for q in listed}
        connection = await aio_pika.connect(self.amqp_url(vhost), timeout=10)
        async with connection:
            channel = await connection.channel()
            for name in found:
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except ValueError:  # not a name the client sends
                    continue
                except aio_pika.exceptions.ChannelClosed:  # the node refused it: that channel is gone
                    channel = await connection.channel()
                    continue
                answer = queue.declaration_result
                found[name] = (int(answer.message_count or 0), int(answer.consumer_count or 0))
        return found

    async def unconsumed(self, vhost: str = "/") -> list[str]:
        """Queues that should have a consumer and have none (the dead letters wait for an operator)."""
        try:
            queues = await self.queues(vhost)
        except (aiohttp.ClientError, aio_pika.exceptions.AMQPError, OSError, TimeoutError, ValueError) as exc:
            return [f"asking the node: {exc!r}"]
        return sorted(
            name for name, (_, consumers) in queues.items() if name != DEAD_LETTER_QUEUE and not consumers
        )
