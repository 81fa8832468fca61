"""``python -m services.alerts``: the alerts service on its own, on the configured bus and database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from services.alerts.main import build
from services.common.bus import make_bus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then stop consumers first and lifecycles after."""
    engine = make_engine(settings.resolved_database_url())
    bus = make_bus(settings.broker_url, instance="alerts")
    service = build(settings, bus, make_sessionmaker(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await service.start()
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    try:
        await stop.wait()
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


def main() -> None:
    """Entry point."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
