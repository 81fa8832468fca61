"""Composition of whole processes: which services run, on which bus and database, until a signal.

``seymour up`` runs every service in one process on the in-process bus and a SQLite file;
``seymour serve <name>`` runs one service on RabbitMQ + PostgreSQL. Both go through :func:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from services.common.bus import Bus
from services.common.db.engine import make_engine, make_sessionmaker, upgrade
from services.common.db.sessions import Sessions
from services.common.health import HealthBeat
from services.common.metrics import BUS_CONNECTED
from services.common.ops import OpsServer, Readiness, bus_probe, database_probe
from services.common.service import Service
from services.common.settings import Settings

log = logging.getLogger(__name__)

SERVICES: Final = ("scheduler", "router", "runner", "results", "alerts", "api")
#: Services that never touch the database (a regional runner has none).
DATABASE_FREE: Final = frozenset({"runner", "router"})
WAIT_MAX_DELAY: Final = 5.0


def make_bus(broker_url: str, *, instance: str = "seymour") -> Bus:
    """The adapter for ``broker_url``: ``memory://`` → in-process, ``amqp://`` → RabbitMQ.

    Imported lazily so a process on the in-process bus never loads FastStream.
    """
    if broker_url.startswith("memory://"):
        from services.common.bus.memory import MemoryBus

        return MemoryBus()
    from services.common.bus.rabbit import RabbitBus

    return RabbitBus(broker_url, instance=instance)


def build_service(name: str, settings: Settings, bus: Bus, sessions: Sessions | None) -> Service:
    """Call ``services.<name>.main.build`` (``sessions`` is ``None`` only for the database-free ones)."""
    module = importlib.import_module(f"services.{name}.main")
    service: Service = module.build(settings, bus, sessions)
    return service


@dataclass
class Runtime:
    """A running set of services sharing one bus and one database."""

    settings: Settings
    bus: Bus
    sessions: Sessions | None
    engine: Any
    services: list[Service] = field(default_factory=list)

    def api_port(self) -> int:
        """The port the api listens on (the one bound, when ``port`` was 0); the setting otherwise."""
        for service in self.services:
            for lifecycle in service.lifecycles:
                port = getattr(lifecycle, "port", None)
                if isinstance(port, int):
                    return port
        return self.settings.port

    async def stop(self) -> None:
        """Stop consumers first, then background work, then close the database."""
        log.info("stopping consumers")
        await self.bus.stop()
        for service in reversed(self.services):
            log.info("stopping service=%s", service.name)
            try:
                await service.stop()
            except Exception:
                log.exception("stopping service failed name=%s", service.name)
        if self.engine is not None:
            await self.engine.dispose()
        log.info("stopped")


async def start(
    settings: Settings,
    names: Sequence[str],
    *,
    runner_regions: Sequence[str] = (),
    bus: Bus | None = None,
    migrate: bool = True,
    wait_for_dependencies: bool = False,
) -> Runtime:
    """Build and start ``names`` (one runner per entry of ``runner_regions`` when given).

    With ``wait_for_dependencies`` (``seymour serve``) a database or broker that is not up yet is waited
    for, with backoff, instead of failing the start: a container started before its dependencies waits and
    reports not-ready on its operations port rather than crash-looping.
    """
    readiness = Readiness()
    ops = None
    if settings.metrics_port is not None:
        ops = OpsServer(settings.metrics_host, settings.metrics_port, readiness)
        await ops.start()
    engine = sessions = None
    try:
        if any(name not in DATABASE_FREE for name in names):
            url = settings.resolved_database_url()
            if migrate:
                await _patiently(wait_for_dependencies, "database migrations", lambda: upgrade(url))
            engine = make_engine(url)
            sessions = make_sessionmaker(engine)
            readiness.probes["database"] = database_probe(engine)
            await _patiently(wait_for_dependencies, "database", _answers(readiness.probes["database"]))
        bus = bus or make_bus(settings.broker_url, instance="+".join(names))
        readiness.probes["bus"] = bus_probe(bus)
        connected = getattr(bus, "healthy", lambda: True)
        BUS_CONNECTED.set_function(lambda: float(connected()))
    except BaseException:
        if ops is not None:
            await ops.stop()
        if engine is not None:
            await engine.dispose()
        raise
    runtime = Runtime(settings, bus, sessions, engine)
    if ops is not None:
        runtime.services.append(Service("ops", lifecycles=[ops]))
    for name in names:
        if name == "runner" and runner_regions:
            for region in runner_regions:
                runner_id = f"{settings.runner_id}-{region}" if settings.runner_id else None
                regional = settings.model_copy(update={"region": region, "runner_id": runner_id})
                runtime.services.append(build_service("runner", regional, bus, sessions))
        else:
            runtime.services.append(build_service(name, settings, bus, sessions))
    for service in runtime.services:
        for route in service.routes:
            bus.subscribe(route)
    try:
        await _patiently(wait_for_dependencies, "broker", bus.start)
        for service in runtime.services:
            if service.name != "ops":
                await service.start()
        if settings.health_file is not None:
            healthy = getattr(bus, "healthy", lambda: True)
            beat = HealthBeat(settings.health_file, settings.health_interval, healthy)
            await beat.start()
            runtime.services.append(Service("health", lifecycles=[beat]))
    except BaseException:
        await runtime.stop()  # e.g. the api's port is taken: leave nothing half-started behind
        raise
    readiness.started = True
    return runtime


def _answers(probe: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[None]]:
    async def attempt() -> None:
        if not await probe():
            raise ConnectionError("no answer")

    return attempt


async def _patiently(wait: bool, what: str, operation: Callable[[], Awaitable[Any]]) -> None:
    """Run ``operation``; when ``wait``, retry it with backoff (0.5 s doubling to 5 s) until it succeeds."""
    delay = 0.5
    while True:
        try:
            await operation()
            return
        except Exception as exc:
            if not wait:
                raise
            log.warning("waiting for a dependency what=%s retry_in=%.1fs error=%r", what, delay, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, WAIT_MAX_DELAY)


async def run_until_signal(runtime: Runtime) -> None:
    """Serve until SIGINT/SIGTERM, then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runtime.stop()
