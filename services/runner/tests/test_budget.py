"""Response body cap × runs in flight stays within the runner's memory budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from services.common.bus.memory import MemoryBus
from services.common.settings import Settings
from services.runner.budget import MIB, BodyBudget, effective_concurrency
from services.runner.http_check import HttpChecker
from services.runner.main import build
from services.runner.tests.support import make_spec

BODY = b"x" * (MIB - 100)


class _Slow:
    """Answers a ~1 MiB body after a pause, counting requests in flight (the bodies a runner holds)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.2)
            return web.Response(body=BODY, content_type="text/plain")
        finally:
            self.in_flight -= 1


@pytest.fixture
async def slow() -> AsyncIterator[tuple[_Slow, str]]:
    server = _Slow()
    app = web.Application()
    app.router.add_get("/", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield server, f"http://127.0.0.1:{runner.addresses[0][1]}/"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("budget_mib", "cap_mib", "most"),
    [(2, 1, 2), (4, 1, 4), (4, 2, 2), (2, 16, 1)],
    ids=["2MiB-budget-1MiB-cap", "4MiB-1MiB", "4MiB-2MiB", "cap-over-budget-runs-alone"],
)
async def test_runs_in_flight_fit_the_budget(
    slow: tuple[_Slow, str], budget_mib: int, cap_mib: int, most: int
) -> None:
    server, url = slow
    budget = BodyBudget(budget_mib * MIB)
    checker = HttpChecker(region="local", budget=budget)
    spec = make_spec(url, request={"max_response_bytes": cap_mib * MIB})
    try:
        results = await asyncio.wait_for(asyncio.gather(*(checker.run(spec) for _ in range(6))), 20)
    finally:
        await checker.stop()
    assert [result.status for result in results] == ["passed"] * 6
    assert server.most == most
    assert budget.free == budget.total
    # the wait for the budget is not part of the measured run
    assert max(result.timings.total_ms or 0 for result in results) < 1500


async def test_a_cancelled_waiter_gives_nothing_away() -> None:
    budget = BodyBudget(2 * MIB)
    async with budget.hold(2 * MIB):
        waiter = asyncio.create_task(_hold(budget, MIB))
        small = asyncio.create_task(_hold(budget, MIB))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    await asyncio.wait_for(small, 2)
    assert budget.free == budget.total


async def _hold(budget: BodyBudget, size: int) -> None:
    async with budget.hold(size):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("concurrency", "budget_mb", "expected"),
    [(256, 256, 256), (256, 64, 64), (8, 256, 8), (256, 16, 16)],
    ids=["default", "small-budget-lowers", "small-concurrency-kept", "minimum-budget"],
)
def test_concurrency_is_derived_from_the_budget(concurrency: int, budget_mb: int, expected: int) -> None:
    assert effective_concurrency(concurrency, budget_mb * MIB) == expected
    settings = Settings(
        region="eu-north-1", runner_concurrency=concurrency, runner_memory_budget_mb=budget_mb
    )
    service = build(settings, MemoryBus())
    assert [route.prefetch for route in service.routes] == [expected]
