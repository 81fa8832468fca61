"""The settings page shows the dead letters waiting, by reason and by queue, read from a real RabbitMQ."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from contracts.topology import CHECK_COMPLETED, RESULTS_EXCHANGE, RESULTS_STORE
from contracts.v1 import RunMissed
from services.api.app import create_app
from services.api.tests.ui.conftest import TOKEN, Published, Ui
from services.common.bus import Route
from services.common.bus.dead_letters import count
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings
from services.common.tests.test_bus_behaviour import until_async

pytestmark = [pytest.mark.rabbit, pytest.mark.timeout(90)]


@pytest.fixture
async def ui_on_rabbit(ui_template_db: Path, tmp_path: Path, rabbit_url: str) -> AsyncIterator[Ui]:
    path = tmp_path / "seymour.db"
    shutil.copyfile(ui_template_db, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    bus = RabbitBus(rabbit_url)

    async def never(message: RunMissed, delivery: object) -> None:
        raise AssertionError("only malformed messages are sent here")

    bus.subscribe(Route(RESULTS_STORE, {RunMissed: never}))
    await bus.start()
    app = create_app(Settings(api_token=TOKEN, broker_url=rabbit_url), sessions=sessions, bus=bus)
    try:
        async with AsyncTestClient(app=app) as client:
            yield Ui(client, sessions, Published())
    finally:
        await bus.stop()
        await engine.dispose()


async def test_settings_show_dead_letters_by_reason_and_queue(ui_on_rabbit: Ui, rabbit_url: str) -> None:
    ui = ui_on_rabbit
    await ui.login()
    empty = await ui.client.get("/settings/")
    assert "None waiting." in empty.text, empty.text[empty.text.find("dead-letters") :][:600]
    bus = ui.client.app.state.bus
    for body in (b"{ not json", b"[]"):
        await bus.publish_raw(RESULTS_EXCHANGE, CHECK_COMPLETED, body)

    async def two() -> bool:
        return await count(rabbit_url) == 2

    await until_async(two, within=30, what="two dead letters")
    page = (await ui.client.get("/settings/")).text
    assert "<strong data-dead-letters-total>2</strong> waiting." in page
    assert '<tr data-reason="rejected"><td>rejected</td><td class="right">2</td></tr>' in page
    assert '<tr data-queue="results.store"><td>results.store</td><td class="right">2</td></tr>' in page
    assert await count(rabbit_url) == 2, "showing them takes none away"
