"""``seymour up`` (everything in one process) and ``seymour serve <service>`` (one service)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any

from contracts.v1.regions import REGIONS
from services import runtime
from services.common import logs
from services.common.db.engine import is_sqlite
from services.common.files import private_dir
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``up``, ``serve`` and ``migrate``."""
    up = subparsers.add_parser("up", help="run everything in one process (SQLite, in-process bus)")
    up.add_argument("--port", type=int, default=None, help="UI/API port (default 8000)")
    up.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    up.add_argument("--data-dir", type=Path, default=None, help="where the SQLite file lives")
    up.add_argument(
        "--regions",
        default="local",
        help="comma-separated regions the local runner answers for (default: local)",
    )
    up.set_defaults(func=_up)

    serve = subparsers.add_parser("serve", help="run one service (RabbitMQ + PostgreSQL from SEYMOUR_*)")
    serve.add_argument("service", choices=runtime.SERVICES)
    serve.add_argument("--region", default=None, help="runner: the region it serves")
    serve.add_argument("--port", type=int, default=None, help="api: port")
    serve.add_argument("--host", default=None, help="api: address")
    serve.add_argument("--no-migrate", action="store_true", help="do not run database migrations first")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="api: processes sharing the port, one per core you give it (default SEYMOUR_API_WORKERS or 1)",
    )
    serve.set_defaults(func=_serve)

    migrate = subparsers.add_parser("migrate", help="upgrade the database schema")
    migrate.set_defaults(func=_migrate)

    health = subparsers.add_parser(
        "health", help="exit 0 if a served process touched its health file recently (container healthchecks)"
    )
    health.add_argument("--file", type=Path, default=None, help="default: SEYMOUR_HEALTH_FILE")
    health.add_argument("--max-age", type=float, default=30.0, help="seconds (default 30)")
    health.set_defaults(func=_health)


def configure_logging(settings: Settings) -> None:
    """``key=value`` (or JSON, ``SEYMOUR_LOG_FORMAT=json``) logs on stderr."""
    logs.configure(settings.log_level, settings.log_format)
    # Libraries that narrate every step at INFO (alembic's plugin set-up, APScheduler's every job added).
    for noisy in ("alembic.runtime.plugins", "apscheduler", "aiormq", "aio_pika", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if getattr(args, "host", None) is not None:
        overrides["host"] = args.host
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    if getattr(args, "region", None):
        overrides["region"] = args.region
    return Settings(**overrides)


def _up(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if os.environ.get("SEYMOUR_BROKER_URL") is None:
        settings = settings.model_copy(update={"broker_url": "memory://"})
    configure_logging(settings)
    regions = [region.strip() for region in args.regions.split(",") if region.strip()]
    unknown = [region for region in regions if region not in REGIONS]
    if unknown or not regions:
        print(
            f"seymour up: unknown region(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(REGIONS)}",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_run_up(settings, regions))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"seymour up: {settings.host}:{settings.port} is already in use; choose another with --port",
            file=sys.stderr,
        )
        return 2


async def _run_up(settings: Settings, regions: list[str]) -> int:
    from services.cli.firstrun import first_run

    private_dir(settings.data_dir)
    rt = await runtime.start(settings, runtime.SERVICES, runner_regions=regions)
    assert rt.sessions is not None, "every service runs, so the database is open"
    notes = await first_run(settings, rt.sessions)
    print(f"Seymour is running: http://{settings.host}:{rt.api_port()}/  (regions: {', '.join(regions)})")
    for line in notes:
        print(line)
    print("Press Ctrl+C to stop.", flush=True)
    await runtime.run_until_signal(rt)
    return 0


def serve_refusal(settings: Settings, service: str) -> str | None:
    """Why ``seymour serve <service>`` must not start with these settings, or ``None``.

    A served process is one of several: on the in-process bus it would talk to nobody, and on a SQLite
    file of its own it would keep its own checks — while reporting healthy forever.
    """
    if settings.broker_url.startswith("memory://"):
        return "SEYMOUR_BROKER_URL is not set (or is memory://): a served service needs RabbitMQ (amqp://...)"
    if service not in runtime.DATABASE_FREE and is_sqlite(settings.resolved_database_url()):
        return (
            "SEYMOUR_DATABASE_URL is not set (or is SQLite): a served service needs PostgreSQL "
            "(postgresql+asyncpg://...); use 'seymour up' to run everything in one process on SQLite"
        )
    return None


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings)
    refusal = serve_refusal(settings, args.service)
    if refusal is not None:
        print(f"seymour serve {args.service}: {refusal}", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else settings.api_workers
    if workers < 1 or (workers > 1 and args.service != "api"):
        print("seymour serve: --workers is for the api, and at least 1", file=sys.stderr)
        return 2
    if workers > 1:
        from services.cli.workers import supervise
        from services.common.db.engine import upgrade_sync

        if settings.port == 0:
            print("seymour serve api: several workers need a fixed --port", file=sys.stderr)
            return 2
        if not args.no_migrate:
            upgrade_sync(settings.resolved_database_url())
        return supervise(settings.host, settings.port, workers)

    async def main() -> int:
        rt = await runtime.start(
            settings, [args.service], migrate=not args.no_migrate, wait_for_dependencies=True
        )
        logging.getLogger("seymour").info("serving service=%s region=%s", args.service, settings.region)
        await runtime.run_until_signal(rt)
        return 0

    return asyncio.run(main())


def _health(args: argparse.Namespace) -> int:
    from services.common.health import age_of

    path = args.file or Settings().health_file
    if path is None:
        print("seymour health: no --file and no SEYMOUR_HEALTH_FILE", file=sys.stderr)
        return 2
    age = age_of(path)
    if age is None or age > args.max_age:
        print(f"unhealthy: {path} " + ("missing" if age is None else f"last touched {age:.0f} s ago"))
        return 1
    print(f"healthy: {path} touched {age:.1f} s ago")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from services.common.db.engine import upgrade_sync

    settings = Settings()
    upgrade_sync(settings.resolved_database_url())
    print("database schema is up to date")
    return 0
