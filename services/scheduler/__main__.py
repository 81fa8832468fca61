"""``python -m services.scheduler``: one scheduler process, configured by ``SEYMOUR_*`` variables."""

from __future__ import annotations

import asyncio
import logging
import signal

from services.common.bus import make_bus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings
from services.scheduler.main import build

log = logging.getLogger("services.scheduler")


async def serve(settings: Settings) -> None:
    """Run the scheduler until SIGTERM or SIGINT, then give up leadership and stop cleanly."""
    engine = make_engine(settings.resolved_database_url(), pool_size=2)
    bus = make_bus(settings.broker_url, instance="scheduler")
    service = build(settings, bus, make_sessionmaker(engine))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    for route in service.routes:
        bus.subscribe(route)
    try:
        # Consumers first, so a change made while the schedule loads from the database is not missed.
        await bus.start()
        await service.start()
        log.info("scheduler running")
        await stopping.wait()
    finally:
        await service.stop()
        await bus.stop()
        await engine.dispose()
        log.info("scheduler stopped")


def main() -> None:
    """Entry point."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
