"""The operations port (metrics, liveness, readiness) and the JSON log format."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.common.logs import JsonFormatter, fields_of
from services.common.metrics import RUNS_STORED
from services.common.ops import OpsServer, Readiness


class Switch:
    def __init__(self) -> None:
        self.up = False

    async def __call__(self) -> bool:
        return self.up


@pytest.fixture
async def ops() -> AsyncIterator[tuple[OpsServer, Switch, Switch]]:
    bus, database = Switch(), Switch()
    server = OpsServer("127.0.0.1", 0, Readiness({"bus": bus, "database": database}))
    await server.start()
    yield server, bus, database
    await server.stop()


async def get(server: OpsServer, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.listen_port}{path}") as response,
    ):
        return response.status, await response.text()


READINESS = [
    ("nothing-up", False, False, False, 503),
    ("not-started", True, True, False, 503),
    ("broker-down", False, True, True, 503),
    ("database-down", True, False, True, 503),
    ("all-up", True, True, True, 200),
]


@pytest.mark.parametrize(
    ("bus_up", "database_up", "started", "status"), [c[1:] for c in READINESS], ids=[c[0] for c in READINESS]
)
async def test_ready_only_while_started_and_broker_and_database_answer(
    ops: tuple[OpsServer, Switch, Switch], bus_up: bool, database_up: bool, started: bool, status: int
) -> None:
    server, bus, database = ops
    bus.up, database.up, server.readiness.started = bus_up, database_up, started
    code, body = await get(server, "/readyz")
    assert code == status
    assert json.loads(body)["checks"] == {"started": started, "bus": bus_up, "database": database_up}
    assert (await get(server, "/livez"))[0] == 200, "alive whatever its dependencies"


async def test_metrics_are_this_process_s_in_prometheus_text(ops: tuple[OpsServer, Switch, Switch]) -> None:
    server, _, _ = ops
    RUNS_STORED.labels("eu-north-1", "passed").inc()
    code, body = await get(server, "/metrics")
    assert code == 200
    assert 'seymour_runs_total{region="eu-north-1",status="passed"}' in body
    assert "# TYPE seymour_run_lag_seconds histogram" in body


LOG_LINES = [
    (
        "run-line",
        "run done run_id=7 check_id=c1 region=eu-north-1 slot=2026-12-01T00:00:01+00:00 status=passed",
        {
            "run_id": "7",
            "check_id": "c1",
            "region": "eu-north-1",
            "slot": "2026-12-01T00:00:01+00:00",
            "status": "passed",
        },
    ),
    ("quoted", 'check changed name="a b" revision=2', {"name": "a b", "revision": "2"}),
    ("reserved-keys-kept", "odd level=x message=y ok=1", {"ok": "1"}),
    ("no-pairs", "bus started", {}),
]


@pytest.mark.parametrize(("message", "fields"), [c[1:] for c in LOG_LINES], ids=[c[0] for c in LOG_LINES])
def test_json_logs_carry_the_pairs_of_the_message_as_fields(message: str, fields: dict[str, str]) -> None:
    assert fields_of(message) == fields
    record = logging.LogRecord("services.runner.handlers", logging.INFO, __file__, 1, message, None, None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "INFO"
    assert entry["logger"] == "services.runner.handlers"
    assert entry["message"] == message
    assert {key: entry[key] for key in fields} == fields
