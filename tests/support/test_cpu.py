"""The CPU meter sees what a process group really spent: a process already running counts from the first
reading, one born later from its birth, a child under its parent, a database connection's backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.common.db.engine import make_engine
from tests.support.cpu import CpuMeter, PostgresBackends, with_descendants
from tests.support.waiting import eventually

#: A child whose own child burns about 0.2 s of CPU, says so, and sleeps (both stay alive to be read).
BURN = """
import subprocess, sys, time
child = "import time; sum(range(6_000_000)); print('burnt', flush=True); time.sleep(30)"
subprocess.Popen([sys.executable, "-c", child])
time.sleep(30)
"""


@contextmanager
def burning() -> Iterator[subprocess.Popen[str]]:
    """The burner, started; killed with its child after."""
    process = subprocess.Popen(
        [sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def burnt(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "burnt"


def test_a_process_born_after_the_first_reading_counts_from_its_birth_with_its_children() -> None:
    roots: list[int] = []
    meter = CpuMeter({"burner": lambda stats: with_descendants(roots, stats)})
    meter.sample()  # before the burner and its child exist
    with burning() as process:
        roots.append(process.pid)
        burnt(process)
        meter.sample()
    assert meter.totals()["burner"] >= 0.05, "the child's CPU counts, from its birth"


def test_a_process_running_at_the_first_reading_counts_from_there() -> None:
    with burning() as process:
        burnt(process)
        meter = CpuMeter({"burner": lambda stats: with_descendants([process.pid], stats)})
        meter.sample()
        meter.sample()
    assert meter.totals()["burner"] < 0.05, "what it spent before the first reading is not counted"


@pytest.mark.postgres
async def test_the_backends_of_a_database_are_counted(pg_url: str) -> None:
    meter = CpuMeter({"postgres": PostgresBackends(make_url(pg_url).database or "")})
    engine = make_engine(pg_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            meter.sample()
            await connection.execute(text("SELECT count(*) FROM generate_series(1, 3000000)"))
            meter.sample()
        await eventually(lambda: meter.totals()["postgres"] > 0.05, within=1.0, what="the backend's CPU")
    finally:
        await engine.dispose()
