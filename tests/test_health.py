"""Health of worker processes: a file kept fresh while the bus is connected, read by `seymour health`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services import runtime
from services.cli import main as cli_main
from services.common.bus.rabbit import RabbitBus
from services.common.health import age_of
from services.common.settings import Settings
from tests.support.waiting import eventually


async def test_a_served_process_keeps_its_health_file_fresh_and_removes_it_on_stop(tmp_path: Path) -> None:
    health = tmp_path / "router.health"
    settings = Settings(health_file=health, health_interval=0.1, broker_url="memory://")
    rt = await runtime.start(settings, ["router"])
    try:
        await eventually(health.exists, within=5, what="the health file")
        first = health.stat().st_mtime
        await eventually(lambda: health.stat().st_mtime > first, within=5, what="the file touched again")
        assert await asyncio.to_thread(cli_main, ["health", "--file", str(health), "--max-age", "5"]) == 0
    finally:
        await rt.stop()
    assert age_of(health) is None
    assert await asyncio.to_thread(cli_main, ["health", "--file", str(health)]) == 1


async def test_a_stale_file_is_unhealthy(tmp_path: Path) -> None:
    import os

    stale = tmp_path / "stale.health"
    stale.touch()
    os.utime(stale, (0, 0))
    assert await asyncio.to_thread(cli_main, ["health", "--file", str(stale), "--max-age", "30"]) == 1


async def test_the_rabbit_bus_is_healthy_only_while_connected(rabbit_url: str) -> None:
    bus = RabbitBus(rabbit_url, instance="health")
    assert not bus.healthy()
    await bus.start()
    try:
        assert bus.healthy()
    finally:
        await bus.stop()
    assert not bus.healthy()
