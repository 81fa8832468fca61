"""How much of the runner's own event-loop work leaks into the timings it reports.

One process, one loop: the runner's ``HttpChecker`` runs checks against a local target that answers
after a known delay, while other tasks on the same loop keep it busy in short synchronous chunks (as
consuming, parsing and publishing other runs do). Prints reported − true ``total_ms`` and ``ttfb_ms``
p50/p99, with the loop idle and with it busy.

    .venv/bin/python -m bench.runner_timing --runs 300 --busy-ms 2 --gap-ms 4 --busy-tasks 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.target import TargetProtocol
from contracts.v1 import CheckSpec
from services.common.db.rollups import exact_percentile
from services.runner.http_check import HttpChecker

DELAY_MS = 50


async def busy(stop: asyncio.Event, chunk_ms: float, gap_ms: float) -> None:
    """Hold the loop for ``chunk_ms`` at a time, then let it go for ``gap_ms``, until ``stop``."""
    while not stop.is_set():
        until = time.perf_counter() + chunk_ms / 1000
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(gap_ms / 1000)


async def errors(
    checker: HttpChecker, spec: CheckSpec, runs: int, spacing: float
) -> tuple[list[float], list[float]]:
    """Reported − true ``total_ms`` and ``ttfb_ms`` of ``runs`` runs started ``spacing`` s apart."""
    totals: list[float] = []
    ttfbs: list[float] = []

    async def one() -> None:
        result = await checker.run(spec)
        if result.status == "passed" and result.timings.total_ms is not None:
            totals.append(result.timings.total_ms - DELAY_MS)
            if result.timings.ttfb_ms is not None:
                ttfbs.append(result.timings.ttfb_ms - DELAY_MS)

    tasks = []
    for _ in range(runs):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(spacing)
    await asyncio.gather(*tasks)
    return totals, ttfbs


def summary(values: list[float]) -> dict[str, float | int]:
    """Count, p50 and p99 in ms."""
    p50 = exact_percentile(values, 0.5)
    p99 = exact_percentile(values, 0.99)
    return {
        "n": len(values),
        "p50_ms": round(p50 if p50 is not None else float("nan"), 2),
        "p99_ms": round(p99 if p99 is not None else float("nan"), 2),
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    """Measure with the loop idle, then busy."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TargetProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = CheckSpec.model_validate(
        {
            "name": "timing",
            "request": {"url": f"http://127.0.0.1:{port}/delay/{DELAY_MS}"},
            "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
            "regions": ["local"],
            "interval": 60,
            "timeout": 10,
        }
    )
    checker = HttpChecker(region="local")
    await checker.start()
    out: dict[str, object] = {}
    try:
        for label, tasks in (("idle", 0), ("busy", args.busy_tasks)):
            stop = asyncio.Event()
            hogs = [asyncio.create_task(busy(stop, args.busy_ms, args.gap_ms)) for _ in range(tasks)]
            totals, ttfbs = await errors(checker, spec, args.runs, args.spacing)
            stop.set()
            await asyncio.gather(*hogs)
            out[label] = {"total": summary(totals), "ttfb": summary(ttfbs)}
    finally:
        await checker.stop()
        server.close()
        await server.wait_closed()
    return out


def main() -> None:
    """Run and print the figures, then one JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--spacing", type=float, default=0.005, help="seconds between run starts")
    parser.add_argument("--busy-ms", type=float, default=2.0, help="length of one busy chunk")
    parser.add_argument("--gap-ms", type=float, default=4.0, help="pause of each busy task between chunks")
    parser.add_argument("--busy-tasks", type=int, default=2, help="tasks holding the loop in chunks")
    args = parser.parse_args()
    out = asyncio.run(main_async(args))
    for label, figures in out.items():
        assert isinstance(figures, dict)
        total, ttfb = figures["total"], figures["ttfb"]
        print(
            f"{label:5} loop  total error p50 {total['p50_ms']:+.2f} p99 {total['p99_ms']:+.2f} ms"
            f"   ttfb error p50 {ttfb['p50_ms']:+.2f} p99 {ttfb['p99_ms']:+.2f} ms   ({total['n']} runs)"
        )
    print("json " + json.dumps(out))


if __name__ == "__main__":
    main()
