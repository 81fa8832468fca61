"""``seymour serve``: refuses the in-process bus and SQLite; started before its broker and database, it
waits (alive, not ready) instead of crash-looping, and serves once they come up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.metrics import probe
from tests.support.processes import fleet, free_port
from tests.support.proxy import TcpProxy
from tests.support.waiting import eventually

REFUSALS = [
    ("no-broker", "results", {"SEYMOUR_DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1:1/x"}, "RabbitMQ"),
    ("memory-broker", "api", {"SEYMOUR_BROKER_URL": "memory://"}, "RabbitMQ"),
    ("sqlite", "scheduler", {"SEYMOUR_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/"}, "PostgreSQL"),
    (
        "sqlite-url",
        "alerts",
        {
            "SEYMOUR_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",
            "SEYMOUR_DATABASE_URL": "sqlite+aiosqlite:///x",
        },
        "PostgreSQL",
    ),
]


@pytest.mark.parametrize(("service", "env", "needs"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_serve_refuses_the_embedded_bus_and_sqlite(
    tmp_path: Path, service: str, env: dict[str, str], needs: str
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", service],
        env={**base, "SEYMOUR_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert needs in done.stderr


@pytest.mark.rabbit
@pytest.mark.postgres
@pytest.mark.slow
async def test_a_service_started_before_its_dependencies_waits_not_ready_then_serves(
    tmp_path: Path, pg_url: str, rabbit_url: str
) -> None:
    database = make_url(pg_url)
    broker = make_url(rabbit_url.replace("amqp://", "postgresql://", 1))
    pg_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
    rabbit_proxy = TcpProxy(broker.host or "127.0.0.1", broker.port or 5672)
    await pg_proxy.start()
    await rabbit_proxy.start()
    await pg_proxy.cut()
    await rabbit_proxy.cut()
    vhost = rabbit_url.rsplit("/", 1)[1]
    ops_port = free_port()
    env = {
        "SEYMOUR_DATABASE_URL": database.set(port=pg_proxy.port).render_as_string(hide_password=False),
        "SEYMOUR_BROKER_URL": rabbit_proxy.url(vhost),
        "SEYMOUR_METRICS_PORT": str(ops_port),
    }
    try:
        with fleet(tmp_path, **env) as running:
            running.start("results", "results")
            await eventually(lambda: probe(ops_port, "/livez"), within=30, what="the ops port")
            for _ in range(3):  # a few probes, seconds apart: it waits rather than exits
                assert await probe(ops_port, "/livez") == 200
                assert await probe(ops_port, "/readyz") == 503
                assert running.alive() == {"results": True}, running.log_tail("results")
                await asyncio.sleep(1.0)  # the point: it is still waiting seconds later, not exited
            await pg_proxy.restore()
            await rabbit_proxy.restore()

            async def ready() -> bool:
                return await probe(ops_port, "/readyz") == 200

            await eventually(ready, within=30, what="ready once the broker and database are up")
            assert "waiting for a dependency" in running.log_tail("results", 200)
            await rabbit_proxy.cut()

            async def not_ready() -> bool:
                return await probe(ops_port, "/readyz") == 503

            await eventually(not_ready, within=15, what="not ready while the broker is away")
            await rabbit_proxy.restore()
            await eventually(ready, within=30, what="ready again after the broker returns")
            # In a thread: the proxies live on this event loop, and the process says goodbye through them.
            codes = await asyncio.to_thread(running.stop_all)
            assert codes == {"results": 0}, running.log_tail("results", 30)
    finally:
        await pg_proxy.close()
        await rabbit_proxy.close()
