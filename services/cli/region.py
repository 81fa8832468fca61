"""``seymour region connect`` (make a broker a region of home), ``seymour region status`` (all regions)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import urllib.parse
from dataclasses import asdict
from typing import Any

from contracts.topology import region_of_user, region_user
from services.common.region_management import ManagementApi, ManagementError
from services.common.region_status import home_buffers, merge, region_side, render
from services.common.region_topology import (
    DEFAULT_RECONNECT_DELAY,
    BrokerAddress,
    HomeTls,
    RegionLink,
    account_plan,
    check_region,
    home_plan,
    redact,
    region_exchange_plan,
)

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``region connect`` and ``region status``."""
    region = subparsers.add_parser("region", help="connect a regional broker to home; show every region")
    commands = region.add_subparsers(dest="region_command", required=True)

    connect = commands.add_parser(
        "connect",
        help="declare on the regional broker the federation from home, the shovels home, the runner queue",
    )
    connect.add_argument("region", help="region code, e.g. eu-north-1")
    # The URLs hold passwords: they may come from the environment, so they never show in a process list.
    connect.add_argument(
        "--home",
        default=os.environ.get("SEYMOUR_CONNECT_HOME"),
        help="home broker, amqp://user:pass@host:5672/vhost (default: SEYMOUR_CONNECT_HOME)",
    )
    connect.add_argument(
        "--local",
        default=os.environ.get("SEYMOUR_CONNECT_LOCAL"),
        help="this region's broker, amqp://user:pass@host/vhost (default: SEYMOUR_CONNECT_LOCAL)",
    )
    connect.add_argument("--local-api", default=None, help="its management API (default http://host:15672)")
    connect.add_argument(
        "--home-api",
        default=None,
        help="home's management API (as an administrator): also declare the region's exchange on home "
        "and the policy that records runs expiring in a buffer ('region grant' does both too)",
    )
    connect.add_argument(
        "--home-ca",
        default=None,
        help="CA certificate home's broker certificate must chain to, as a path on the regional broker's "
        "host (required for amqps)",
    )
    connect.add_argument(
        "--home-name", default=None, help="name home's certificate must carry (default: --home's host)"
    )
    connect.add_argument("--reconnect-delay", type=float, default=DEFAULT_RECONNECT_DELAY)
    connect.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for both links to run (0: do not wait)"
    )
    connect.set_defaults(func=_connect)

    grant = commands.add_parser(
        "grant",
        help="create or update a region's own least-privilege account on the home broker "
        "(password read from standard input)",
    )
    grant.add_argument("region", help="region code, e.g. eu-north-1")
    grant.add_argument(
        "--home", default=None, help="home broker as an administrator (default: SEYMOUR_BROKER_URL)"
    )
    grant.add_argument("--home-api", default=None, help="home's management API (default http://host:15672)")
    grant.add_argument("--user", default=None, help="account name (default seymour-<region>)")
    grant.set_defaults(func=_grant)

    status = commands.add_parser("status", help="link state, buffered messages and runner heartbeats")
    status.add_argument(
        "--home-api", default=None, help="home's management API (default: next to SEYMOUR_BROKER_URL)"
    )
    status.add_argument("--local", default=None, help="also show this regional broker's own view")
    status.add_argument("--local-api", default=None, help="its management API (default http://host:15672)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)


async def connect(
    region: str,
    home: BrokerAddress,
    local: BrokerAddress,
    *,
    home_api: BrokerAddress | None = None,
    tls: HomeTls | None = None,
    reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
    wait: float = 30.0,
) -> dict[str, str]:
    """Apply the region's plan (and home's policy if ``home_api``); returns the link states seen last.

    Raises :class:`ManagementError` when a broker refuses, ``TimeoutError`` when ``wait`` > 0 and the
    links are not running by then (e.g. home's certificate does not verify), ``ValueError`` for an
    ``amqps`` home without ``tls``.
    """
    link = RegionLink(check_region(region), home, local, reconnect_delay=reconnect_delay, tls=tls)
    if home_api is not None:
        async with ManagementApi(home_api) as api:
            await api.apply([*region_exchange_plan(home_api, region), *home_plan(home_api)])
    async with ManagementApi(local) as api:
        await api.apply(link.plan())
        states = await _links(api)
        deadline = time.monotonic() + wait
        while wait > 0 and not _running(states):
            if time.monotonic() > deadline:
                raise TimeoutError(f"links not running after {wait:.0f}s: {states}")
            await asyncio.sleep(0.25)
            states = await _links(api)
    return states


async def grant(region: str, home_api: BrokerAddress, username: str, password: str) -> None:
    """Give ``region`` its own account on home (see :func:`account_plan`). Raises ``ValueError`` for a
    bad region code or an account name that does not name this region, :class:`ManagementError` when
    home refuses."""
    check_region(region)
    if region_of_user(username) != region:
        raise ValueError(f"account {username!r} must be named {region_user(region)!r} (optionally '.suffix')")
    if not password:
        raise ValueError("empty password (give it on standard input)")
    async with ManagementApi(home_api) as api:
        await api.apply(account_plan(home_api, region, username, password))


def _grant(args: argparse.Namespace) -> int:
    from services.common.settings import Settings

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        home = BrokerAddress.parse(args.home or Settings().broker_url, args.home_api)
        username = args.user or region_user(args.region)
        asyncio.run(grant(args.region, home, username, password))
    except (ValueError, ManagementError) as exc:
        print(f"seymour region grant: {exc}", file=sys.stderr)
        return 1
    print(f"region {args.region}: account {username} on home {redact(home.amqp_url)}")
    return 0


async def _links(api: ManagementApi) -> dict[str, str]:
    vhost = api.address.quoted_vhost
    states = {"federation": "absent"}
    for link in await api.get(f"/api/federation-links/{vhost}") or []:
        states["federation"] = str(link.get("status"))
        if link.get("error"):
            states["federation_error"] = str(link["error"])[:200]
    for shovel in await api.get(f"/api/shovels/{vhost}") or []:
        states[f"shovel {shovel.get('name')}"] = str(shovel.get("state"))
    return states


def _running(states: dict[str, str]) -> bool:
    shovels = [value for key, value in states.items() if key.startswith("shovel ")]
    return (
        states.get("federation") == "running" and len(shovels) == 2 and all(s == "running" for s in shovels)
    )


def _connect(args: argparse.Namespace) -> int:
    try:
        if not args.home or not args.local:
            raise SystemExit("region connect needs --home and --local (or SEYMOUR_CONNECT_HOME and _LOCAL)")
        home = BrokerAddress.parse(args.home)
        local = BrokerAddress.parse(args.local, args.local_api)
        home_api = BrokerAddress.parse(args.home, args.home_api) if args.home_api else None
        tls = None
        if args.home_ca:
            name = args.home_name or urllib.parse.urlsplit(args.home).hostname or ""
            tls = HomeTls(ca_file=args.home_ca, server_name=name)
        states = asyncio.run(
            connect(
                args.region,
                home,
                local,
                home_api=home_api,
                tls=tls,
                reconnect_delay=args.reconnect_delay,
                wait=args.wait,
            )
        )
    except (ValueError, ManagementError, TimeoutError) as exc:
        print(f"seymour region connect: {exc}", file=sys.stderr)
        return 1
    print(f"region {args.region}: {redact(args.local)} ⇄ home {redact(args.home)}")
    for name, state in states.items():
        print(f"  {name}: {state}")
    if home_api is None:
        print(
            "  (home policy not set here: pass --home-api, or set it once on home, see docs/distributed.md)"
        )
    return 0


async def status(
    home_api: BrokerAddress | None,
    local: BrokerAddress | None,
    database_url: str | None,
    *,
    stale: float,
    dead: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Gather every source that answers; returns the rows and a note for each source that did not."""
    notes: list[str] = []
    buffers = heartbeats = side = None
    if home_api is not None:
        try:
            async with ManagementApi(home_api) as api:
                buffers = await home_buffers(api)
        except ManagementError as exc:
            notes.append(f"home broker: {exc}")
    if database_url is not None:
        try:
            heartbeats = await _heartbeats(database_url, stale=stale, dead=dead)
        except Exception as exc:
            notes.append(f"database: {type(exc).__name__}: {str(exc)[:200]}")
    if local is not None:
        try:
            async with ManagementApi(local) as api:
                side = await region_side(api)
        except ManagementError as exc:
            notes.append(f"regional broker: {exc}")
    return [asdict(row) for row in merge(buffers, heartbeats, side)], notes


async def _heartbeats(database_url: str, *, stale: float, dead: float) -> list[dict[str, Any]]:
    from services.api.queries import regions
    from services.common.db.engine import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        return await regions(make_sessionmaker(engine), stale_after=stale, dead_after=dead)
    finally:
        await engine.dispose()


def _status(args: argparse.Namespace) -> int:
    from services.common.settings import Settings

    settings = Settings()
    home_api = None
    if args.home_api or settings.broker_url.startswith(("amqp://", "amqps://")):
        broker = (
            settings.broker_url if settings.broker_url.startswith("amqp") else "amqp://guest:guest@localhost/"
        )
        home_api = BrokerAddress.parse(broker, args.home_api)
    local = BrokerAddress.parse(args.local, args.local_api) if args.local else None
    database_url = settings.database_url or (
        settings.resolved_database_url() if os.path.exists(settings.data_dir) else None
    )
    rows, notes = asyncio.run(
        status(
            home_api, local, database_url, stale=settings.runner_stale_after, dead=settings.runner_dead_after
        )
    )
    if args.json:
        print(json.dumps({"regions": rows, "notes": notes}, indent=2))
    else:
        from services.common.region_status import RegionRow

        print(render([RegionRow(**row) for row in rows]) if rows else "no regions known yet")
        for note in notes:
            print(f"note: {note}")
    return 0 if rows or not notes else 1
