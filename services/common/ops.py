"""Each served process's operations port: ``/metrics`` (its own), ``/livez`` and ``/readyz``.

Liveness and readiness differ on purpose: a process whose broker or database is away is alive (restarting
it would not bring them back, and a crash loop would lose what it holds) but not ready — it is waiting.
``/readyz`` answers 200 only while the bus is connected and the database answers ``SELECT 1``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

log = logging.getLogger(__name__)

#: How long one readiness probe of the database may take.
DB_PROBE_TIMEOUT: Final = 2.0
#: Probes closer together than this reuse the last answer (scrapers and orchestrators poll often).
PROBE_CACHE_S: Final = 1.0

Probe = Callable[[], Awaitable[bool]]


def bus_probe(bus: Any) -> Probe:
    """Ready while the bus says it is connected (the in-process bus always is)."""
    healthy: Callable[[], bool] = getattr(bus, "healthy", lambda: True)

    async def probe() -> bool:
        return bool(healthy())

    return probe


def database_probe(engine: Any) -> Probe:
    """Ready while the database answers ``SELECT 1`` within :data:`DB_PROBE_TIMEOUT`."""

    async def probe() -> bool:
        try:
            async with asyncio.timeout(DB_PROBE_TIMEOUT), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.debug("database not ready error=%r", exc)
            return False
        return True

    return probe


class Readiness:
    """Named probes, run together, the answer cached for :data:`PROBE_CACHE_S`."""

    def __init__(self, probes: dict[str, Probe] | None = None) -> None:
        self.probes: dict[str, Probe] = dict(probes or {})
        self.started = False
        self._last: tuple[float, dict[str, bool]] | None = None

    async def check(self) -> dict[str, bool]:
        """Each dependency's state, plus ``started`` (the service finished starting)."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < PROBE_CACHE_S:
            return self._last[1]
        names = list(self.probes)
        answers = await asyncio.gather(*(self.probes[name]() for name in names))
        result = {"started": self.started, **dict(zip(names, answers, strict=True))}
        self._last = (now, result)
        return result


class OpsServer:
    """The aiohttp server behind the operations port (a Lifecycle)."""

    def __init__(self, host: str, port: int, readiness: Readiness) -> None:
        self.host = host
        self.listen_port = port
        self.readiness = readiness
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, then :attr:`port` tells which)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._live)
        app.router.add_get("/readyz", self._ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.listen_port)
        await site.start()
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.listen_port = int(sockets[0].getsockname()[1])
        log.info("ops server listening host=%s port=%d", self.host, self.listen_port)

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _ready(self, request: web.Request) -> web.Response:
        checks = await self.readiness.check()
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return web.Response(
            text=json.dumps(body), status=200 if ready else 503, content_type="application/json"
        )
