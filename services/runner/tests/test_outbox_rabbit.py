"""The runner's outbox on real RabbitMQ (and PostgreSQL for what gets stored): results travel in confirmed
batches, every RunCheck is acked once its result is confirmed, and a runner SIGKILLed mid-batch loses no
run — its unconfirmed runs are redelivered to the next runner and each run is stored once."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.topology import RESULTS_EXCHANGE, QueueSpec, runner_queue
from contracts.v1 import CheckCompleted, CheckCompletedBatch, RunCheck, RunMissed, RunnerHeartbeat
from services.common.bus import Delivery, Route
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run
from services.common.settings import Settings
from services.results.main import build as build_results
from services.runner.main import build as build_runner
from services.runner.tests.support import make_spec
from tests.support.processes import fleet
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit]

REGION = "eu-north-1"
TAP = QueueSpec("test.results-tap", RESULTS_EXCHANGE, ("#",))


class Tap:
    """Everything the runners published to the results exchange, as messages and as run ids."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.runs: Counter[uuid.UUID] = Counter()
        self.batch_sizes: list[int] = []

    async def __call__(self, message: Any, delivery: Delivery) -> None:
        self.kinds[message.kind] += 1
        if isinstance(message, CheckCompletedBatch):
            self.batch_sizes.append(len(message.items))
            self.runs.update(item.run_id for item in message.items)
        elif isinstance(message, CheckCompleted):
            self.runs[message.run_id] += 1


@pytest.fixture
async def tap(rabbit_url: str) -> AsyncIterator[tuple[RabbitBus, Tap]]:
    """A bus that publishes RunChecks and taps the results exchange."""
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    seen = Tap()
    kinds = (CheckCompleted, CheckCompletedBatch, RunMissed, RunnerHeartbeat)
    bus.subscribe(Route(TAP, dict.fromkeys(kinds, seen), prefetch=500))
    await bus.declare_queue(runner_queue(REGION))
    await bus.start()
    yield bus, seen
    await bus.stop()


def run_check(url: str) -> RunCheck:
    now = datetime.now(UTC)
    return RunCheck(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=now.replace(microsecond=0),
        region=REGION,
        spec=make_spec(url),
        expires_at=now + timedelta(minutes=10),
    )


async def test_results_travel_in_confirmed_batches_and_every_run_check_is_acked(
    rabbit_url: str, target: str, tap: tuple[RabbitBus, Tap]
) -> None:
    bus, seen = tap
    runner_bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=5.0)
    settings = Settings(region=REGION, runner_id="batching-runner", heartbeat_interval=60)
    runner = build_runner(settings, runner_bus)
    for route in runner.routes:
        runner_bus.subscribe(route)
    await runner_bus.start()
    await runner.start()
    commands = [run_check(f"{target}/delay/{random.randint(0, 50)}") for _ in range(120)]
    try:
        await asyncio.gather(*(bus.publish(command) for command in commands))

        async def all_published() -> bool:
            return set(seen.runs) == {command.run_id for command in commands}

        await eventually(all_published, within=30, what="every run's result")
        assert max(seen.batch_sizes, default=0) > 1, seen.kinds
        assert seen.kinds["check.completed.batch"] < len(commands) / 4  # far fewer messages than runs
        assert set(seen.runs.values()) == {1}

        # Acked RunChecks have left the queue; an unacked one would be ready again once the runner is gone.
        await runner_bus.stop()

        async def all_acked() -> bool:
            return await bus.queue_depth(runner_queue(REGION).name) == 0

        await eventually(all_acked, within=10, what="no RunCheck handed back")
    finally:
        await runner_bus.stop()
        await runner.stop()


async def test_a_runner_killed_mid_batch_loses_no_run_and_none_is_stored_twice(
    rabbit_url: str, pg_url: str, target: str, tap: tuple[RabbitBus, Tap], tmp_path: Path
) -> None:
    """The runner is SIGKILLed while results are being gathered and confirmed: runs whose batch was not
    confirmed were never acked, so the broker gives them to the next runner; a run whose batch was
    confirmed but whose ack was lost is made again, and results stores it once."""
    bus, seen = tap
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    results_bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    results = build_results(Settings(results_batch_ms=20), results_bus, sessions)
    for route in results.routes:
        results_bus.subscribe(route)
    await results_bus.start()
    await results.start()
    # Runs of 0.1-1.5 s, more than the runner holds at once: when the first results are in, some are
    # gathered, some confirmed, many not done (the runner cannot be through before it is killed).
    commands = [run_check(f"{target}/delay/{random.randint(100, 1500)}") for _ in range(400)]
    env = {"SEYMOUR_BROKER_URL": rabbit_url, "SEYMOUR_DATABASE_URL": pg_url, "SEYMOUR_REGION": REGION}
    try:
        with fleet(tmp_path, **env) as services:
            services.start("runner-1", "runner", "--no-migrate", SEYMOUR_RUNNER_ID="runner-1")
            await asyncio.gather(*(bus.publish(command) for command in commands))

            async def some_published() -> bool:
                return len(seen.runs) >= 60

            await eventually(some_published, within=60, what="the first results", every=0.01)
            services.kill("runner-1", signal.SIGKILL)
            published_before = len(seen.runs)
            assert published_before < len(commands), "the kill came too late to land mid-batch"
            services.start("runner-2", "runner", "--no-migrate", SEYMOUR_RUNNER_ID="runner-2")

            async def all_stored() -> bool:
                async with sessions() as session:
                    stored = await session.scalar(select(func.count()).select_from(Run))
                return stored == len(commands)

            await eventually(all_stored, within=90, what="every run stored", every=0.2)
        async with sessions() as session:
            rows = (await session.execute(select(Run.run_id, Run.runner_id))).all()
        assert sorted(run_id for run_id, _ in rows) == sorted(command.run_id for command in commands)
        by_runner = Counter(runner for _, runner in rows)
        assert by_runner["runner-1"] > 0, by_runner
        assert by_runner["runner-2"] > 0, by_runner
        assert await bus.dead_letter_count() == 0
        assert set(seen.runs) == {command.run_id for command in commands}
    finally:
        await results_bus.stop()
        await results.stop()
        await engine.dispose()
