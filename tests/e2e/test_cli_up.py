"""`seymour up` as a user runs it: a process that serves, prints how to log in, and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api import Client
from tests.support.processes import free_port
from tests.support.servers import demo_check, demo_target, receiver
from tests.support.waiting import eventually


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    token_file: Path


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """`seymour up` in its own process, on a free port, with three local regions."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")} | {"PYTHONUNBUFFERED": "1"}
    log = tmp_path / "up.log"
    argv = [
        sys.executable,
        "-m",
        "services.cli",
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "d"),
        "--regions",
        "us-east-1,eu-north-1,ca-central-1",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Up(proc, port, log, tmp_path / "d" / "api-token")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def test_up_serves_runs_checks_and_stops_cleanly_on_sigterm(up: Up) -> None:
    await eventually(
        lambda: up.token_file.exists() and "Press Ctrl+C" in up.log.read_text(),
        within=60,
        what="seymour up to be ready",
    )
    text = up.log.read_text()
    assert f"http://127.0.0.1:{up.port}/" in text
    assert "Log in as 'admin' with password: " in text
    assert oct(up.token_file.stat().st_mode)[-3:] == "600"
    api = Client(f"http://127.0.0.1:{up.port}", up.token_file.read_text().strip())
    async with demo_target() as target, receiver() as sink:
        check = await api.ok("POST", "/api/v1/checks", demo_check(target.url, sink.url, interval=1))

        async def three_regions_ran() -> bool:
            return len({run["region"] for run in await api.runs(check["id"])}) == 3

        await eventually(three_regions_ran, within=20, what="runs from the three local regions")
        started = time.monotonic()
        up.proc.send_signal(signal.SIGTERM)
        await eventually(lambda: up.proc.poll() is not None, within=20, what="seymour up to exit")
        assert up.proc.returncode == 0
        assert time.monotonic() - started < 15
    assert "Traceback" not in up.log.read_text(), up.log.read_text()[-3000:]
