"""The whole test loop under load, in distributed mode: scheduler → router → runner → results.

Starts a local target (a raw asyncio server, own process) and the services as separate processes on
the local RabbitMQ (a fresh vhost) and PostgreSQL (a fresh database), with N checks at interval I.
Prints real runs/s (passed, failed, error) apart from ``missed`` rows, schedule→stored lag p50/p99
(``runs.stored_at`` minus the slot) of real runs, the runner's timing error against a target with a
known delay, CPU ms per real run and RSS for every process (the target's apart from the pipeline's),
and a bare aiohttp loop's requests/s against the same target in the same run, with the ratio.

RabbitMQ and PostgreSQL are shared by everything on the machine: their CPU is the whole broker node
and this database's backends over the window, so other load on the node shows up in the broker's line.

    .venv/bin/python -m bench.pipeline --checks 600 --interval 2 --seconds 30

``--surge`` measures overload instead (issue 8's "no cliff"): ``--checks`` run for ``--seconds`` (the base
rate, which should be about what the machine sustains), then as many again are enabled for
``--surge-seconds`` (twice the base rate), then disabled again for ``--after-seconds``. It prints, per
phase, real runs/s (and the surge's as a share of the base's), missed/s by reason, lag and timing error,
CPU ms per slot offered and per real run for every process, and how long after the drop lag and timing
error were back within goal (every later 5 s window with lag p99 <= ``--lag-goal`` and timing error p99
<= ``--error-goal-ms``, or the base phase's own p99 when that is higher).

    .venv/bin/python -m bench.pipeline --checks 400 --interval 2 --surge --seconds 30 --surge-seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from bench.baseline import bare_aiohttp_rps
from contracts.v1 import CheckChanged, CheckSpec
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.db.models import Check, Run
from services.common.db.rollups import exact_percentile

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DELAY_MS = 50
REAL = ("passed", "failed", "error")
"""Statuses of runs that actually ran; ``missed`` rows are stored but are not runs."""
SURGE_PREFIX = "bench-surge-"
WINDOW_S = 5.0


def free_port() -> int:
    """A free port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, within: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    import socket

    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def sh(*args: str) -> None:
    """Run a command, failing loudly."""
    subprocess.run(args, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Scratch:
    """A bench's own database, vhost and log folder, named from one random tag so runs never collide."""

    database: str
    vhost: str
    logs: Path

    @classmethod
    def make(cls, kind: str) -> Scratch:
        """New names for a ``kind`` of bench (``bench``, ``drain``…); the log folder is created."""
        tag = uuid.uuid4().hex[:8]
        scratch = cls(f"seymour_{kind}_{tag}", f"seymour-{kind}-{tag}", Path(f"/tmp/seymour-{kind}-{tag}"))
        scratch.logs.mkdir(parents=True)
        return scratch

    @property
    def db_url(self) -> str:
        """The database, for the services."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database}"

    @property
    def broker(self) -> str:
        """The vhost on the local RabbitMQ, for the services."""
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"


def tear_down(procs: list[subprocess.Popen[bytes]], database: str, vhost: str) -> None:
    """Stop the bench's processes (killing any still busy after 15 s), then drop its database and vhost.

    Every bench that starts services ends here, so a bench stopped half-way leaves nothing behind.
    """
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()  # still draining thousands of messages: the vhost and database must go anyway
            proc.wait(timeout=15)
    subprocess.run(
        ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
        capture_output=True,
        timeout=60,
    )
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)


async def seed(
    url: str, target: str, checks: int, interval: int, delayed: int, region: str, surge: int = 0
) -> None:
    """Insert the checks (``delayed`` of them against the known-delay endpoint), and ``surge`` more,
    disabled (named ``bench-surge-``), for :func:`set_surge` to switch on and off."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        for index in range(checks + surge):
            if index >= checks:
                spec = CheckSpec.model_validate(
                    {
                        "name": f"{SURGE_PREFIX}{index:05d}",
                        "request": {"url": f"{target}/fast"},
                        "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
                        "regions": [region],
                        "interval": interval,
                        "timeout": 10,
                        "enabled": False,
                    }
                )
                session.add(
                    Check(id=uuid.uuid4(), name=spec.name, spec=spec.model_dump(mode="json"), enabled=False)
                )
                continue
            path = f"/delay/{DELAY_MS}" if index < delayed else "/fast"
            spec = CheckSpec.model_validate(
                {
                    "name": f"bench-delay-{index:05d}" if index < delayed else f"bench-{index:05d}",
                    "request": {"url": f"{target}{path}"},
                    "assertions": [
                        {"source": "status_code", "comparison": "equals", "target": 200},
                        {"source": "json_body", "property": "$.ok", "comparison": "equals", "target": True},
                    ],
                    "regions": [region],
                    "interval": interval,
                    "timeout": 10,
                }
            )
            session.add(
                Check(id=uuid.uuid4(), name=spec.name, spec=spec.model_dump(mode="json"), enabled=True)
            )
    await engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (from /proc), or NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def postgres_backends(url: str) -> list[int]:
    """OS pids of the PostgreSQL backends serving the bench's database (the services' connections); none
    for a SQLite file (``bench.embedded``), whose work is done inside the process that opened it."""
    if not url.startswith("postgresql"):
        return []
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            )
            return [int(pid) for pid in rows.scalars()]
    finally:
        await engine.dispose()


def rabbit_pid() -> int:
    """The local RabbitMQ node's OS pid (its CPU is part of every run's cost)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "eval", "list_to_integer(os:getpid())."],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(out.stdout.strip())


async def first_run(url: str, *, within: float) -> None:
    """Return once a real run (not a ``missed`` row) is stored; raise after ``within`` seconds."""
    engine = make_engine(url)
    deadline = time.monotonic() + within
    try:
        while True:
            async with engine.connect() as conn:
                real = select(Run.run_id).where(Run.status.in_(REAL)).limit(1)
                if (await conn.execute(real)).first() is not None:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no run stored within {within:.0f} s")
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def measure(
    url: str, *, warmup: float, seconds: float, delayed_prefix: str, pids: dict[int, str]
) -> dict[str, Any]:
    """Wait for the first real run and the warm-up after it, then read what was stored in the window
    (by ``stored_at``). Counting warm-up from the first run keeps slow service start-up on a loaded
    machine out of the window."""
    await first_run(url, within=180.0)
    window_start = datetime.now(UTC) + timedelta(seconds=warmup)
    window_end = window_start + timedelta(seconds=seconds)
    await asyncio.sleep(warmup)
    backends = await postgres_backends(url)
    cpu_before = {pid: cpu_seconds(pid) for pid in [*pids, *backends]}
    await asyncio.sleep(seconds)
    cpu = {label: cpu_seconds(pid) - cpu_before[pid] for pid, label in pids.items()}
    cpu["postgres"] = sum(max(cpu_seconds(pid) - cpu_before[pid], 0.0) for pid in backends)
    rss = {label: rss_mb(pid) for pid, label in pids.items()}
    await asyncio.sleep(1.0)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        delayed_ids = set(
            (await session.execute(select(Check.id).where(Check.name.like(f"{delayed_prefix}%"))))
            .scalars()
            .all()
        )
        rows = (
            await session.execute(
                select(
                    Run.slot,
                    Run.stored_at,
                    Run.status,
                    Run.check_id,
                    Run.total_ms,
                    Run.error_class,
                    Run.error_message,
                ).where(Run.stored_at >= window_start, Run.stored_at < window_end)
            )
        ).all()
    await engine.dispose()
    statuses: dict[str, int] = {}
    lags: list[float] = []
    timing_errors: list[float] = []
    missed_why: dict[str, int] = {}
    for slot, stored_at, status, check_id, total_ms, reason, detail in rows:
        statuses[status] = statuses.get(status, 0) + 1
        if status == "missed":
            why = f"{reason}: {missed_where(detail)}"
            missed_why[why] = missed_why.get(why, 0) + 1
        if status not in REAL or stored_at is None:
            continue
        lags.append((stored_at - slot).total_seconds())
        if check_id in delayed_ids and total_ms is not None:
            timing_errors.append(total_ms - DELAY_MS)
    return {
        "rows": len(rows),
        "real": sum(statuses.get(status, 0) for status in REAL),
        "seconds": seconds,
        "lags": lags,
        "statuses": statuses,
        "missed_why": missed_why,
        "timing_errors": timing_errors,
        "cpu": cpu,
        "rss_mb": rss,
        "postgres_backends": len(backends),
    }


def missed_where(detail: str | None) -> str:
    """Where a missed run was given up, from its detail without the per-run parts (ids, seconds)."""
    if not detail:
        return "-"
    if detail.startswith("received by runner"):
        return "received by runner after it expired"
    if detail.startswith("shed by the router"):
        return "shed by the router"  # the rest is the backlog's size at that moment
    return detail


def pct(values: list[float], q: float) -> float:
    """A percentile, or NaN for no values."""
    value = exact_percentile(values, q)
    return float("nan") if value is None else value


async def set_surge(url: str, broker: str, *, enabled: bool, revision: int) -> int:
    """Enable or disable the surge checks as the api would: a new revision in the database, then a
    ``CheckChanged`` for each, which the scheduler follows at once. Returns how many changed."""
    from services.common.bus.rabbit import RabbitBus

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(select(Check.id, Check.spec).where(Check.name.like(f"{SURGE_PREFIX}%")))
        ).all()
        changes = []
        for check_id, raw in rows:
            spec = CheckSpec.model_validate({**raw, "enabled": enabled})
            await session.execute(
                update(Check)
                .where(Check.id == check_id)
                .values(enabled=enabled, revision=revision, spec=spec.model_dump(mode="json"))
            )
            changes.append(CheckChanged(check_id=check_id, change="updated", revision=revision, spec=spec))
    await engine.dispose()
    bus = RabbitBus(broker, instance="bench")
    await bus.start()
    try:
        await asyncio.gather(*(bus.publish(change) for change in changes))
    finally:
        await bus.stop()
    return len(changes)


@dataclass
class Phase:
    """One stretch of the surge bench: its wall-clock window and the CPU each process used in it."""

    name: str
    start: datetime
    end: datetime
    offered_per_s: float
    cpu: dict[str, float]


async def cpu_during(seconds: float, pids: dict[int, str], backends: list[int]) -> dict[str, float]:
    """CPU seconds each process (and this database's backends, as ``postgres``) used over ``seconds``."""
    before = {pid: cpu_seconds(pid) for pid in [*pids, *backends]}
    await asyncio.sleep(seconds)
    cpu = {label: cpu_seconds(pid) - before[pid] for pid, label in pids.items()}
    cpu["postgres"] = sum(max(cpu_seconds(pid) - before[pid], 0.0) for pid in backends)
    return cpu


async def measure_surge(
    url: str, broker: str, args: argparse.Namespace, pids: dict[int, str]
) -> tuple[list[Phase], list[Any], set[Any], dict[str, float]]:
    """Base rate, then twice it, then the base again; returns the phases, every run stored from the
    base phase on, the ids of the timed checks, and RSS at the end of the surge."""
    await first_run(url, within=180.0)
    await asyncio.sleep(args.warmup)
    backends = await postgres_backends(url)
    base_rate = args.checks / args.interval
    phases = []
    start = datetime.now(UTC)
    cpu = await cpu_during(args.seconds, pids, backends)
    phases.append(Phase("base", start, datetime.now(UTC), base_rate, cpu))
    changed = await set_surge(url, broker, enabled=True, revision=2)
    start = datetime.now(UTC)
    cpu = await cpu_during(args.surge_seconds, pids, backends)
    phases.append(Phase("surge", start, datetime.now(UTC), base_rate + changed / args.interval, cpu))
    rss = {label: rss_mb(pid) for pid, label in pids.items()}
    await set_surge(url, broker, enabled=False, revision=3)
    start = datetime.now(UTC)
    cpu = await cpu_during(args.after_seconds, pids, backends)
    phases.append(Phase("after", start, datetime.now(UTC), base_rate, cpu))
    await asyncio.sleep(2.0)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        delayed_ids = set(
            (await session.execute(select(Check.id).where(Check.name.like("bench-delay-%")))).scalars().all()
        )
        rows = (
            await session.execute(
                select(
                    Run.slot,
                    Run.stored_at,
                    Run.status,
                    Run.check_id,
                    Run.total_ms,
                    Run.error_class,
                    Run.error_message,
                ).where(Run.stored_at >= phases[0].start, Run.stored_at < phases[-1].end)
            )
        ).all()
    await engine.dispose()
    return phases, list(rows), delayed_ids, rss


def shed_or_where(detail: str | None) -> str:
    """:func:`missed_where`, with the router's shedding detail (which names its backlog) as one label."""
    if detail and detail.startswith("shed by the router"):
        return "shed by the router"
    return missed_where(detail)


def phase_figures(phase: Phase, rows: list[Any], delayed: set[Any]) -> dict[str, Any]:
    """Real runs/s, missed/s by reason, lag and timing error of the runs stored in ``phase``, with CPU."""
    seconds = (phase.end - phase.start).total_seconds()
    inside = [row for row in rows if phase.start <= row.stored_at < phase.end]
    real = [row for row in inside if row.status in REAL]
    missed: dict[str, int] = {}
    where: dict[str, int] = {}
    for row in inside:
        if row.status == "missed":
            missed[row.error_class or "-"] = missed.get(row.error_class or "-", 0) + 1
            why = f"{row.error_class}: {shed_or_where(row.error_message)}"
            where[why] = where.get(why, 0) + 1
    lags = [(row.stored_at - row.slot).total_seconds() for row in real]
    errors = [row.total_ms - DELAY_MS for row in real if row.check_id in delayed and row.total_ms is not None]
    slots = phase.offered_per_s * seconds
    return {
        "seconds": round(seconds, 1),
        "offered_per_s": phase.offered_per_s,
        "real_per_s": round(len(real) / seconds, 1),
        "missed_per_s": {reason: round(count / seconds, 1) for reason, count in sorted(missed.items())},
        "missed_where": dict(sorted(where.items())),
        "lag_p50_s": round(pct(lags, 0.5), 3),
        "lag_p99_s": round(pct(lags, 0.99), 3),
        "timing_error_p99_ms": round(pct(errors, 0.99), 2),
        "cpu_ms_per_offered_slot": {k: round(v * 1000 / slots, 3) for k, v in sorted(phase.cpu.items())},
        "cpu_ms_per_real_run": {
            k: round(v * 1000 / max(len(real), 1), 3) for k, v in sorted(phase.cpu.items())
        },
        "cpu_percent_of_a_core": {k: round(v * 100 / seconds, 1) for k, v in sorted(phase.cpu.items())},
    }


def recovery(
    after: Phase, rows: list[Any], delayed: set[Any], lag_goal: float, error_goal: float
) -> tuple[float | None, list[dict[str, Any]]]:
    """Seconds from the drop until every later ``WINDOW_S`` window is within goal (``None``: never in the
    phase), and each window's figures."""
    windows = []
    start = after.start
    while start + timedelta(seconds=WINDOW_S) <= after.end:
        end = start + timedelta(seconds=WINDOW_S)
        real = [row for row in rows if start <= row.stored_at < end and row.status in REAL]
        lags = [(row.stored_at - row.slot).total_seconds() for row in real]
        errors = [
            row.total_ms - DELAY_MS for row in real if row.check_id in delayed and row.total_ms is not None
        ]
        lag99, err99 = pct(lags, 0.99), pct(errors, 0.99)
        ok = bool(real) and lag99 <= lag_goal and not err99 > error_goal
        windows.append(
            {
                "from_s": round((start - after.start).total_seconds()),
                "real_per_s": round(len(real) / WINDOW_S, 1),
                "lag_p99_s": round(lag99, 3),
                "timing_error_p99_ms": round(err99, 2),
                "within_goal": ok,
            }
        )
        start = end
    recovered: float | None = None
    for window in reversed(windows):
        if not window["within_goal"]:
            break
        recovered = float(window["from_s"])
    return recovered, windows


def report_surge(
    args: argparse.Namespace,
    phases: list[Phase],
    rows: list[Any],
    delayed: set[Any],
    rss: dict[str, float],
    baseline: float,
) -> None:
    """Print the surge bench's figures for people, then one JSON line for machines."""
    figures: dict[str, Any] = {name.name: phase_figures(name, rows, delayed) for name in phases}
    base, surge = figures["base"], figures["surge"]
    error_goal = max(args.error_goal_ms, base["timing_error_p99_ms"])
    recovered, windows = recovery(phases[2], rows, delayed, args.lag_goal, error_goal)
    first = next((float(w["from_s"]) for w in windows if w["within_goal"]), None)
    held = sum(1 for w in windows if first is not None and w["from_s"] >= first and w["within_goal"])
    later = sum(1 for w in windows if first is not None and w["from_s"] >= first)
    share = surge["real_per_s"] / base["real_per_s"] if base["real_per_s"] else float("nan")
    figures |= {
        "surge_real_share_of_base": round(share, 3),
        "recovered_after_s": recovered,
        "first_within_goal_after_s": first,
        "windows_within_goal_from_then": [held, later],
        "goal": {"lag_p99_s": args.lag_goal, "timing_error_p99_ms": error_goal, "window_s": WINDOW_S},
        "after_windows": windows,
        "rss_mb_in_surge": {k: round(v, 1) for k, v in sorted(rss.items())},
        "bare_aiohttp_req_per_s": round(baseline, 1),
        "ratio_base_real_runs_to_bare_aiohttp": round(base["real_per_s"] / baseline, 3),
    }
    print("wall-clock figures depend on the machine's other load: say 'loaded' when quoting them")
    for name in ("base", "surge", "after"):
        phase = figures[name]
        missed = ", ".join(f"{k} {v}" for k, v in phase["missed_per_s"].items()) or "0"
        print(
            f"{name:<6} offered {phase['offered_per_s']:7.1f}/s  real {phase['real_per_s']:7.1f}/s"
            f"  missed/s {missed}  lag p50 {phase['lag_p50_s']:.3f} p99 {phase['lag_p99_s']:.3f} s"
            f"  timing error p99 {phase['timing_error_p99_ms']:+.1f} ms  ({phase['seconds']:.0f} s)"
        )
        if phase["missed_where"]:
            print("       missed: " + "; ".join(f"{k} {v}" for k, v in phase["missed_where"].items()))
        print(
            "       CPU ms per slot offered "
            + "  ".join(f"{k} {v:.2f}" for k, v in phase["cpu_ms_per_offered_slot"].items())
        )
        print(
            "       CPU ms per real run     "
            + "  ".join(f"{k} {v:.2f}" for k, v in phase["cpu_ms_per_real_run"].items())
        )
    print(f"surge real runs / base real runs  {share:.3f}  (goal >= 0.90)")
    print(
        f"first window within goal         {'never' if first is None else f'{first:.0f} s'} after the drop;"
        f" {held} of the {later} windows from then on within goal (a loaded machine has noisy windows)"
    )
    print(
        f"back within goal after the drop  {'never' if recovered is None else f'{recovered:.0f} s'}"
        f"  (every later {WINDOW_S:.0f} s window: lag p99 <= {args.lag_goal} s, timing error p99 <= "
        f"{error_goal:.1f} ms; goal <= 60 s)"
    )
    print(
        "after the drop, per window       "
        + "  ".join(
            f"{w['from_s']}s:{w['lag_p99_s']:.2f}s/{w['timing_error_p99_ms']:+.0f}ms" for w in windows
        )
    )
    print(
        f"bare aiohttp loop  {baseline:8.1f} req/s; base real runs per bare request"
        f" {figures['ratio_base_real_runs_to_bare_aiohttp']}"
    )
    print("RSS MB in surge    " + "  ".join(f"{k} {v:.0f}" for k, v in figures["rss_mb_in_surge"].items()))
    print("json " + json.dumps(figures))


def main() -> None:
    """Run the benchmark and print its figures (and a JSON line for machines)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=600)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--delayed", type=int, default=20, help=f"checks against a {DELAY_MS} ms target")
    parser.add_argument("--runners", type=int, default=1)
    parser.add_argument(
        "--shed-after", type=float, help="the router's shedding bound in s (default 1; 0 never sheds)"
    )
    parser.add_argument(
        "--runner-concurrency", type=int, help="runs a runner holds at once (its prefetch; default 256)"
    )
    parser.add_argument("--with-alerts", action="store_true", help="also run the alerts service")
    parser.add_argument("--surge", action="store_true", help="base rate, then twice it, then the base again")
    parser.add_argument("--surge-seconds", type=float, default=120)
    parser.add_argument("--after-seconds", type=float, default=90)
    parser.add_argument("--lag-goal", type=float, default=0.25, help="lag p99 goal after the drop (s)")
    parser.add_argument("--error-goal-ms", type=float, default=5.0, help="timing error p99 goal (ms)")
    args = parser.parse_args()

    scratch = Scratch.make("bench")
    database, vhost, logs = scratch.database, scratch.vhost, scratch.logs
    db_url, broker = scratch.db_url, scratch.broker
    port = free_port()
    target = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")},
        "SEYMOUR_DATABASE_URL": db_url,
        "SEYMOUR_BROKER_URL": broker,
        "SEYMOUR_REGION": "local",
        "SEYMOUR_LOG_LEVEL": "WARNING",
        "SEYMOUR_HEARTBEAT_INTERVAL": "2",
    }
    if args.shed_after is not None:
        env["SEYMOUR_ROUTER_SHED_AFTER"] = str(args.shed_after)
    if args.runner_concurrency:
        env["SEYMOUR_RUNNER_CONCURRENCY"] = str(args.runner_concurrency)

    labels: dict[int, str] = {}

    def start(label: str, *argv: str) -> None:
        log = open(logs / f"{label}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        labels[proc.pid] = label

    sh("psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{database}"')
    sh("rabbitmqctl", "-q", "add_vhost", vhost)
    sh("rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        upgrade_sync(db_url)
        start("target", sys.executable, "-m", "bench.target", "--port", str(port))
        wait_for_port(port)
        baseline = asyncio.run(bare_aiohttp_rps(f"{target}/fast", seconds=5))
        surge = args.checks if args.surge else 0
        asyncio.run(seed(db_url, target, args.checks, args.interval, args.delayed, "local", surge))
        seymour = [sys.executable, "-m", "services.cli", "serve"]
        start("results", *seymour, "results", "--no-migrate")
        start("router", *seymour, "router")
        for index in range(args.runners):
            start(f"runner-{index}", *seymour, "runner", "--region", "local")
        if args.with_alerts:
            start("alerts", *seymour, "alerts", "--no-migrate")
        time.sleep(3.0)
        start("scheduler", *seymour, "scheduler", "--no-migrate")
        pids = {pid: label for pid, label in labels.items()} | {rabbit_pid(): "rabbitmq"}
        if args.surge:
            phases, rows, delayed, rss = asyncio.run(measure_surge(db_url, broker, args, pids))
            report_surge(args, phases, rows, delayed, rss, baseline)
            return
        result = asyncio.run(
            measure(
                db_url, warmup=args.warmup, seconds=args.seconds, delayed_prefix="bench-delay-", pids=pids
            )
        )
    finally:
        tear_down(procs, database, vhost)

    report(args, result, baseline)


def report(args: argparse.Namespace, result: dict[str, Any], baseline: float) -> None:
    """Print the figures for people, then one JSON line for machines."""
    offered = args.checks / args.interval
    real = result["real"]
    rate = real / result["seconds"]
    missed = result["statuses"].get("missed", 0)
    lags = result["lags"]
    errors = result["timing_errors"]
    runs = max(real, 1)
    cpu_ms = {label: seconds * 1000 / runs for label, seconds in sorted(result["cpu"].items())}
    pipeline_ms = sum(ms for label, ms in cpu_ms.items() if label != "target")
    figures = {
        "checks": args.checks,
        "interval_s": args.interval,
        "offered_runs_per_s": offered,
        "real_runs_per_s": round(rate, 1),
        "missed_per_s": round(missed / result["seconds"], 1),
        "statuses": result["statuses"],
        "missed_why": result["missed_why"],
        "lag_p50_s": round(pct(lags, 0.5), 3),
        "lag_p99_s": round(pct(lags, 0.99), 3),
        "timing_error_p50_ms": round(pct(errors, 0.5), 2),
        "timing_error_p99_ms": round(pct(errors, 0.99), 2),
        "timed_runs": len(errors),
        "cpu_ms_per_real_run": {label: round(ms, 3) for label, ms in cpu_ms.items()},
        "cpu_ms_per_real_run_pipeline": round(pipeline_ms, 3),
        "cpu_ms_per_offered_slot": {
            label: round(seconds * 1000 / (offered * result["seconds"]), 3)
            for label, seconds in sorted(result["cpu"].items())
        },
        "cpu_percent_of_a_core": {
            label: round(seconds * 100 / result["seconds"], 1)
            for label, seconds in sorted(result["cpu"].items())
        },
        "rss_mb": {label: round(mb, 1) for label, mb in sorted(result["rss_mb"].items())},
        "postgres_backends": result["postgres_backends"],
        "bare_aiohttp_req_per_s": round(baseline, 1),
        "ratio_real_runs_to_bare_aiohttp": round(rate / baseline, 3),
    }
    lag50, lag99 = figures["lag_p50_s"], figures["lag_p99_s"]
    err50, err99 = figures["timing_error_p50_ms"], figures["timing_error_p99_ms"]
    print(f"offered            {offered:8.1f} runs/s ({args.checks} checks every {args.interval} s)")
    print(
        f"real runs          {rate:8.1f} runs/s over {args.seconds:.0f} s"
        f"   missed {figures['missed_per_s']:.1f}/s   statuses {result['statuses']}"
    )
    if result["missed_why"]:
        print("missed because     " + "; ".join(f"{k} {v}" for k, v in result["missed_why"].items()))
    print(f"schedule->stored   p50 {lag50:.3f} s   p99 {lag99:.3f} s (real runs)")
    print(
        f"timing error       p50 {err50:+.2f} ms   p99 {err99:+.2f} ms vs {DELAY_MS} ms ({len(errors)} runs)"
    )
    print(f"bare aiohttp loop  {baseline:8.1f} req/s (new connection each, same target, same run)")
    print(f"ratio              {rate / baseline:8.3f} real runs per bare request")
    print(
        "CPU ms per real run "
        + "  ".join(f"{label} {ms:.2f}" for label, ms in cpu_ms.items() if label != "target")
        + f"  = pipeline {pipeline_ms:.2f}"
        + f"  (postgres: {result['postgres_backends']} backends of this database)"
    )
    print(f"CPU ms per real run target {cpu_ms.get('target', float('nan')):.2f} (bench target, not Seymour)")
    print(
        "CPU ms per slot    "
        + "  ".join(f"{k} {v:.2f}" for k, v in figures["cpu_ms_per_offered_slot"].items() if k != "target")
        + "  (per slot offered: steady even when runs are missed on a busy machine)"
    )
    print(
        "CPU % of a core    "
        + "  ".join(f"{k} {v:.0f}" for k, v in figures["cpu_percent_of_a_core"].items())
        + "  (per real run is meaningless once nearly everything is missed)"
    )
    print("RSS MB             " + "  ".join(f"{k} {v:.0f}" for k, v in figures["rss_mb"].items()))
    print("json " + json.dumps(figures))


if __name__ == "__main__":
    main()
