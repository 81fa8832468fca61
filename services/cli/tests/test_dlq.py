"""``seymour dlq`` on a real RabbitMQ: counts by reason, show, replay once the cause is fixed, purge."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts.topology import CHECK_COMPLETED, RESULTS_EXCHANGE, RESULTS_STORE
from contracts.v1 import RunMissed, run_id_for
from services.cli import main
from services.common.bus import Delivery, Route
from services.common.bus.dead_letters import count
from services.common.bus.rabbit import RabbitBus
from services.common.tests.test_bus_behaviour import until_async

pytestmark = [pytest.mark.rabbit, pytest.mark.timeout(120)]


def missed(region: str) -> RunMissed:
    slot = datetime.now(UTC).replace(microsecond=0)
    check_id = uuid.uuid4()
    return RunMissed(
        run_id=run_id_for(check_id, slot, region),
        check_id=check_id,
        slot=slot,
        region=region,
        reason="expired",
    )


async def seymour(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["dlq", *args])
    return code, capsys.readouterr().out


async def test_dead_letters_are_counted_by_reason_shown_replayed_and_purged(
    rabbit_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = True
    stored: list[RunMissed] = []

    async def store(message: RunMissed, delivery: Delivery) -> None:
        if broken:
            raise RuntimeError("database schema out of date")
        stored.append(message)

    bus = RabbitBus(rabbit_url)
    bus.subscribe(Route(RESULTS_STORE, {RunMissed: store}, prefetch=4))
    await bus.start()
    try:
        poisoned = [missed("eu-north-1"), missed("us-east-1")]
        for message in poisoned:
            await bus.publish(message)
        for body in (b"{ not json", b'{"kind": "no.such.kind", "version": 1}', b"[]"):
            await bus.publish_raw(RESULTS_EXCHANGE, CHECK_COMPLETED, body)

        async def all_dead() -> bool:
            return await count(rabbit_url) == 5

        await until_async(all_dead, within=60, what="five dead letters")

        for _ in range(2):  # listing takes nothing away
            code, out = await seymour(capsys, "list", "--json", "--broker", rabbit_url)
            assert code == 0
            listed = json.loads(out)
            assert listed["total"] == 5
            assert listed["by_reason"] == {"rejected": 3, "delivery_limit": 2}
            assert listed["by_queue"] == {"results.store": 5}
        assert await count(rabbit_url) == 5

        code, out = await seymour(capsys, "show", str(poisoned[0].run_id), "--broker", rabbit_url)
        assert code == 0
        assert str(poisoned[0].check_id) in out
        assert "delivery_limit" in out

        code, _ = await seymour(capsys, "purge", "--broker", rabbit_url)
        assert code == 2, "purge without a filter or --all refuses"

        broken = False
        code, out = await seymour(capsys, "replay", "--reason", "delivery_limit", "--broker", rabbit_url)
        assert (code, out.strip()) == (0, "replayed 2 of 5 dead letters (3 kept)")

        async def replayed() -> bool:
            return {m.run_id for m in stored} == {m.run_id for m in poisoned}

        await until_async(replayed, within=30, what="the replayed messages handled")

        code, out = await seymour(capsys, "purge", "--reason", "rejected", "--broker", rabbit_url)
        assert (code, out.strip()) == (0, "purged 3 of 3 dead letters (0 kept)")
        assert await count(rabbit_url) == 0
    finally:
        await bus.stop()
