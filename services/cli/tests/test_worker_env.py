"""Each api worker of ``seymour serve api --workers N`` serves its own operations port."""

from __future__ import annotations

import pytest

from services.cli.workers import worker_env

WORKER_PORTS = [
    ("no-ops-port", {}, 1, None),
    ("first-worker", {"SEYMOUR_METRICS_PORT": "9464"}, 0, "9464"),
    ("third-worker", {"SEYMOUR_METRICS_PORT": "9464"}, 2, "9466"),
    ("zero-means-any", {"SEYMOUR_METRICS_PORT": "0"}, 2, "0"),
]


@pytest.mark.parametrize(
    ("env", "index", "port"), [c[1:] for c in WORKER_PORTS], ids=[c[0] for c in WORKER_PORTS]
)
def test_each_api_worker_gets_its_own_operations_port(
    env: dict[str, str], index: int, port: str | None
) -> None:
    assert worker_env(env, index).get("SEYMOUR_METRICS_PORT") == port
