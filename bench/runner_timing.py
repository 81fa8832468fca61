"""How exact the runner's reported timings are, and what a run costs it in CPU.

The target (``bench.target``, a raw asyncio server) runs in its own process and answers
``/delay/50`` after 50 ms. For each rate (runs started per second, on a fixed grid so a late start does
not push the next one), three phases run one after another in this process, each for ``--seconds``:

- ``bare``: a bare aiohttp client (fresh connection per request, stock asyncio loop, nothing else
  running), timing ``get`` + ``read`` with ``perf_counter``: the yardstick of what this machine can
  measure right now;
- ``idle``: the runner's ``HttpChecker.run`` with nothing else on the caller's loop;
- ``busy``: the same while ``--busy-tasks`` tasks keep the caller's loop busy in synchronous chunks of
  ``--busy-ms`` (standing in for consuming, decoding, assertions and publishing of other runs).

``--neighbours N`` starts N processes that burn CPU for the whole measurement (a busy neighbour on a
shared machine), to show how much of the machine's load reaches the figures.

Each prints reported − true ``total_ms`` and ``ttfb_ms`` p50/p99 (true = the known delay), the ratio of
the runner's p99 error to the bare client's, and, for the runner phases, CPU ms per run of this
process split into the caller's thread (busy chunks excluded: they are measured apart) and the HTTP
thread. The target's CPU per request is printed on its own line, and so is its own lateness (each
answer says how much later than asked it was written, ``X-Late-Us``): "own p99" is the p99 of the
error minus that lateness, the share of the error that is the client's.

    .venv/bin/python -m bench.runner_timing --rates 200 1000 --seconds 5 [--neighbours 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from bench.pipeline import cpu_seconds, free_port, wait_for_port
from contracts.v1 import CheckSpec
from services.common.db.rollups import exact_percentile
from services.runner.http_check import HttpChecker

DELAY_MS = 50
#: One run's figures: reported − true total and ttfb, and the target's lateness (ms); None: not passed.
Sample = tuple[float, float | None, float] | None


def _late_ms(headers: Any) -> float:
    """The target's own lateness from its ``X-Late-Us`` header (0 when absent)."""
    try:
        return int(headers.get("x-late-us") or headers.get("X-Late-Us") or 0) / 1000
    except ValueError:
        return 0.0


def _burn(seconds: float) -> None:
    """A busy neighbour: spin for ``seconds`` (in its own process)."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


class Hogs:
    """Tasks holding the loop ``chunk_ms`` at a time with ``gap_ms`` pauses; counts the CPU they burn."""

    def __init__(self, tasks: int, chunk_ms: float, gap_ms: float) -> None:
        self.tasks, self.chunk_ms, self.gap_ms = tasks, chunk_ms, gap_ms
        self.burnt = 0.0
        self._stop = asyncio.Event()
        self._running: list[asyncio.Task[None]] = []

    async def _hog(self) -> None:
        while not self._stop.is_set():
            began = time.thread_time()
            until = time.perf_counter() + self.chunk_ms / 1000
            while time.perf_counter() < until:
                pass
            self.burnt += time.thread_time() - began
            await asyncio.sleep(self.gap_ms / 1000)

    def start(self) -> None:
        """Start the tasks."""
        self._running = [asyncio.create_task(self._hog()) for _ in range(self.tasks)]

    async def stop(self) -> None:
        """Stop the tasks and wait for them."""
        self._stop.set()
        await asyncio.gather(*self._running)


async def paced(rate: float, seconds: float, one: Callable[[], Coroutine[Any, Any, Sample]]) -> list[Sample]:
    """Start ``one()`` ``rate`` times a second on a fixed grid for ``seconds``; all their samples."""
    total = int(rate * seconds)
    tasks: list[asyncio.Task[Sample]] = []
    began = time.perf_counter()
    while len(tasks) < total:
        due = min(total, int((time.perf_counter() - began) * rate) + 1)
        while len(tasks) < due:
            tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(max(0.0, began + len(tasks) / rate - time.perf_counter()))
    return list(await asyncio.gather(*tasks))


def summary(samples: list[Sample]) -> dict[str, Any]:
    """Count, failures and p50/p99 of reported − true total and ttfb, in ms."""
    good = [sample for sample in samples if sample is not None]
    out: dict[str, Any] = {"n": len(good), "failed": len(samples) - len(good)}
    for name, values in (
        ("total", [sample[0] for sample in good]),
        ("ttfb", [sample[1] for sample in good if sample[1] is not None]),
        ("late", [sample[2] for sample in good]),
        ("own", [sample[0] - sample[2] for sample in good]),
    ):
        for q in (0.5, 0.99):
            value = exact_percentile(values, q)
            out[f"{name}_p{int(q * 100)}_ms"] = round(value, 2) if value is not None else None
    return out


async def bare(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """The bare aiohttp client's error at ``rate``."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> Sample:
            began = time.perf_counter()
            try:
                async with session.get(url) as response:
                    first = time.perf_counter()
                    await response.read()
                    late = _late_ms(response.headers)
            except aiohttp.ClientError:
                return None
            done = time.perf_counter()
            return (done - began) * 1000 - DELAY_MS, (first - began) * 1000 - DELAY_MS, late

        return summary(await paced(rate, seconds, one))


def _thread_cpu(native_id: int | None) -> float:
    """CPU seconds of one thread of this process (0 when there is none)."""
    if native_id is None:
        return 0.0
    with open(f"/proc/self/task/{native_id}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _http_thread() -> int | None:
    """The runner's HTTP thread, when the checker has one."""
    for thread in threading.enumerate():
        if thread.name == "runner-http":
            return thread.native_id
    return None


async def runner(
    checker: HttpChecker, spec: CheckSpec, rate: float, seconds: float, hogs: Hogs | None
) -> dict[str, Any]:
    """The runner's error at ``rate`` (with ``hogs`` on the caller's loop) and its CPU per run."""

    async def one() -> Sample:
        result = await checker.run(spec)
        timings = result.timings
        if result.status != "passed" or timings.total_ms is None:
            return None
        ttfb = None if timings.ttfb_ms is None else timings.ttfb_ms - DELAY_MS
        late = _late_ms(result.response.headers) if result.response is not None else 0.0
        return timings.total_ms - DELAY_MS, ttfb, late

    http = _http_thread()
    main_before, http_before = time.thread_time(), _thread_cpu(http)
    if hogs is not None:
        hogs.start()
    samples = await paced(rate, seconds, one)
    if hogs is not None:
        await hogs.stop()
    main_cpu = time.thread_time() - main_before - (hogs.burnt if hogs is not None else 0.0)
    http_cpu = _thread_cpu(http) - http_before
    out = summary(samples)
    out["cpu_ms_per_run"] = {
        "caller": round(main_cpu * 1000 / len(samples), 3),
        "http_thread": round(http_cpu * 1000 / len(samples), 3),
        "total": round((main_cpu + http_cpu) * 1000 / len(samples), 3),
    }
    return out


async def measure(args: argparse.Namespace, port: int) -> dict[str, Any]:
    """Every phase at every rate."""
    url = f"http://127.0.0.1:{port}/delay/{DELAY_MS}"
    spec = CheckSpec.model_validate(
        {
            "name": "timing",
            "request": {"url": url},
            "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
            "regions": ["local"],
            "interval": 60,
            "timeout": 10,
        }
    )
    checker = HttpChecker(region="local")
    await checker.start()
    out: dict[str, Any] = {}
    try:
        for rate in args.rates:
            phases: dict[str, Any] = {"bare": await bare(url, rate, args.seconds)}
            phases["idle"] = await runner(checker, spec, rate, args.seconds, None)
            hogs = Hogs(args.busy_tasks, args.busy_ms, args.gap_ms)
            phases["busy"] = await runner(checker, spec, rate, args.seconds, hogs)
            for label in ("idle", "busy"):
                for key in ("total", "own"):
                    base, mine = phases["bare"][f"{key}_p99_ms"], phases[label][f"{key}_p99_ms"]
                    ok = base is not None and mine is not None and base > 0
                    ratio = round(mine / base, 2) if ok else None
                    phases[label]["p99_ratio_to_bare" if key == "total" else "own_p99_ratio_to_bare"] = ratio
            out[str(rate)] = phases
    finally:
        await checker.stop()
    return out


def main() -> None:
    """Start the target, measure, print a table, then one JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 1000.0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--busy-ms", type=float, default=2.0, help="length of one busy chunk")
    parser.add_argument("--gap-ms", type=float, default=4.0, help="pause of each busy task between chunks")
    parser.add_argument("--busy-tasks", type=int, default=2, help="tasks holding the loop in chunks")
    parser.add_argument("--neighbours", type=int, default=0, help="processes burning CPU meanwhile")
    args = parser.parse_args()
    port = free_port()
    target = subprocess.Popen([sys.executable, "-m", "bench.target", "--port", str(port)])
    span = len(args.rates) * 3 * args.seconds + 30
    neighbours = [
        multiprocessing.get_context("spawn").Process(target=_burn, args=(span,), daemon=True)
        for _ in range(args.neighbours)
    ]
    for neighbour in neighbours:
        neighbour.start()
    try:
        wait_for_port(port)
        target_before = cpu_seconds(target.pid)
        out = asyncio.run(measure(args, port))
        target_cpu = cpu_seconds(target.pid) - target_before
    finally:
        target.terminate()
        target.wait(timeout=10)
        for neighbour in neighbours:
            neighbour.terminate()
            neighbour.join(10)
    requests = sum(phase["n"] + phase["failed"] for rate in out.values() for phase in rate.values())
    out["target_cpu_ms_per_request"] = round(target_cpu * 1000 / max(1, requests), 3)
    for rate, phases in out.items():
        if not isinstance(phases, dict):
            continue
        for label, figures in phases.items():
            line = (
                f"{float(rate):6.0f}/s {label:4}  total error p50 {figures['total_p50_ms']:+7.2f}"
                f" p99 {figures['total_p99_ms']:+7.2f} ms   ttfb error p50 {figures['ttfb_p50_ms']:+7.2f}"
                f" p99 {figures['ttfb_p99_ms']:+7.2f} ms   target late p99 {figures['late_p99_ms']:6.2f}"
                f"   own p50 {figures['own_p50_ms']:+6.2f} p99 {figures['own_p99_ms']:+7.2f} ms"
                f"   ({figures['n']} ok, {figures['failed']} not)"
            )
            if "cpu_ms_per_run" in figures:
                cpu = figures["cpu_ms_per_run"]
                line += (
                    f"   p99 x{figures['p99_ratio_to_bare']} of bare"
                    f" (own x{figures['own_p99_ratio_to_bare']})"
                    f"   CPU ms/run {cpu['total']:.3f}"
                    f" (caller {cpu['caller']:.3f}, http thread {cpu['http_thread']:.3f})"
                )
            print(line)
    print(f"target  CPU ms per request {out['target_cpu_ms_per_request']:.3f} (bench target, not Seymour)")
    print("json " + json.dumps(out))


if __name__ == "__main__":
    main()
