"""``seymour secrets rotate``: re-seal every secret at rest under a new deployment key."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
from typing import Any

from services.common.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``secrets rotate``."""
    command = subparsers.add_parser("secrets", help="the deployment key that seals secrets at rest")
    actions = command.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser(
        "rotate",
        help="re-seal every stored secret: opened with the old key (SEYMOUR_OLD_SECRET_KEY, else "
        "<data_dir>/secret.key), sealed with the new one (SEYMOUR_SECRET_KEY). Stop the home services "
        "first and start them with the new key.",
    )
    rotate.set_defaults(func=_rotate)


def _rotate(args: argparse.Namespace) -> int:
    from services.common.db.engine import make_engine, make_sessionmaker, upgrade
    from services.common.rotation import rotate
    from services.common.secretbox import SealError, SecretBox

    settings = Settings()
    old_key = os.environ.get("SEYMOUR_OLD_SECRET_KEY")
    if not old_key or not settings.secret_key:
        print(
            "set SEYMOUR_OLD_SECRET_KEY (the key in use) and SEYMOUR_SECRET_KEY (the new one)",
            file=sys.stderr,
        )
        return 2
    old = SecretBox(hashlib.sha256(old_key.encode()).digest())
    new = SecretBox(hashlib.sha256(settings.secret_key.encode()).digest())

    async def main() -> int:
        url = settings.resolved_database_url()
        await upgrade(url)
        engine = make_engine(url)
        try:
            count = await rotate(make_sessionmaker(engine), old, new)
        except SealError:
            print(
                "a stored secret does not open with SEYMOUR_OLD_SECRET_KEY: nothing changed", file=sys.stderr
            )
            return 1
        finally:
            await engine.dispose()
        print(f"re-sealed {count} secret(s) under the new key")
        return 0

    return asyncio.run(main())
