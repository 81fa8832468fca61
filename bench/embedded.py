"""``seymour up`` under load: scheduler, router, runner, results, alerts and api in one process, on SQLite
and the in-process bus, as a newcomer runs it (issue 8's embedded goal: ≥ 1,000 runs/s with lag p99
≤ 250 ms and flat memory).

Starts the bench target (own process), seeds N checks at interval I into a fresh SQLite file, starts
``seymour up`` on it and prints what it holds: real runs/s (passed, failed, error) apart from ``missed``
(by reason: ``overloaded`` is the router shedding what the process cannot run in time), schedule→stored
lag, the timing error against a target with a known delay, CPU ms per real run of the process and the
target, its RSS sampled every 5 s over the window (first, peak, last), and a bare aiohttp loop's
requests/s against the same target in the same run, with the ratio.

    .venv/bin/python -m bench.embedded --checks 400 --interval 2 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.baseline import bare_aiohttp_rps
from bench.pipeline import first_run, free_port, measure, report, rss_mb, seed, wait_for_port
from services.common.db.engine import upgrade_sync

RSS_EVERY_S = 5.0


async def measured(url: str, pid: int, pids: dict[int, str], args: argparse.Namespace) -> dict[str, Any]:
    """:func:`bench.pipeline.measure` with the process's RSS sampled alongside, every few seconds from its
    first stored run on (start-up is not what "flat memory" is about)."""
    await first_run(url, within=180.0)
    samples: list[float] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            samples.append(rss_mb(pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), RSS_EVERY_S)

    sampler = asyncio.create_task(sample())
    try:
        result = await measure(
            url, warmup=args.warmup, seconds=args.seconds, delayed_prefix="bench-delay-", pids=pids
        )
    finally:
        done.set()
        await sampler
    result["rss_samples_mb"] = samples
    return result


def main() -> None:
    """Run the benchmark and print its figures (and a JSON line for machines)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=400)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--delayed", type=int, default=20, help="checks against a 50 ms target")
    parser.add_argument(
        "--shed-after", type=float, help="the router's shedding bound in s (default 1; 0 never sheds)"
    )
    parser.add_argument("--runner-concurrency", type=int, help="runs held at once (default 256)")
    parser.add_argument(
        "--checked-bus",
        action="store_true",
        help="decode every in-process message as from a broker (as the tests do), to compare",
    )
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="seymour-bench-up-"))
    url = f"sqlite+aiosqlite:///{data / 'seymour.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")},
        "SEYMOUR_LOG_LEVEL": "WARNING",
        "SEYMOUR_HEARTBEAT_INTERVAL": "2",
    }
    if args.shed_after is not None:
        env["SEYMOUR_ROUTER_SHED_AFTER"] = str(args.shed_after)
    if args.runner_concurrency:
        env["SEYMOUR_RUNNER_CONCURRENCY"] = str(args.runner_concurrency)
    if args.checked_bus:
        env["SEYMOUR_MEMORY_BUS_CHECKED"] = "1"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        target = f"http://127.0.0.1:{port}"
        logs = open(data / "target.log", "wb")  # noqa: SIM115 - lives as long as the process
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.target", "--port", str(port)], stdout=logs, stderr=logs
            )
        )
        wait_for_port(port)
        baseline = asyncio.run(bare_aiohttp_rps(f"{target}/fast", seconds=5))
        upgrade_sync(url)
        asyncio.run(seed(url, target, args.checks, args.interval, args.delayed, "local"))
        up_log = open(data / "seymour.log", "wb")  # noqa: SIM115 - lives as long as the process
        seymour = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "up",
                "--data-dir",
                str(data),
                "--port",
                str(free_port()),
            ],
            env=env,
            stdout=up_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(seymour)
        pids = {seymour.pid: "seymour up", procs[0].pid: "target"}
        result = asyncio.run(measured(url, seymour.pid, pids, args))
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)

    report(args, result, baseline)
    samples = [mb for mb in result["rss_samples_mb"] if mb == mb]
    if samples:
        print(
            f"RSS over the run   first {samples[0]:.0f} MB   peak {max(samples):.0f} MB"
            f"   last {samples[-1]:.0f} MB"
            f"   ({len(samples)} samples every {RSS_EVERY_S:.0f} s from the first stored run)"
        )


if __name__ == "__main__":
    main()
