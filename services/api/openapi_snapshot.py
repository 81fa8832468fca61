"""The REST API's OpenAPI document, committed as ``services/api/openapi.json``.

A test compares it with the app, so a change to a path, a parameter or an answer's shape fails until
the snapshot is renewed on purpose (``python -m services.api.openapi_snapshot --write``) and a reviewer
sees the diff, as ``contracts.snapshots`` does for the bus.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

from services.api.app import create_app
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings

SNAPSHOT: Final = Path(__file__).parent / "openapi.json"


class _Unused:
    """A publisher for an app that only describes itself."""

    async def publish(self, message: Any, **_: Any) -> None:
        raise RuntimeError("the describing app publishes nothing")


def document() -> dict[str, Any]:
    """The OpenAPI document the api serves at ``/schema/openapi.json``, without ``info.version`` (a
    release is not an API change)."""
    engine = make_engine("sqlite+aiosqlite://")  # never connected: building the schema reads no rows
    app = create_app(Settings(api_token="describe-only"), sessions=make_sessionmaker(engine), bus=_Unused())
    return strip_version(app.openapi_schema.to_schema())


def strip_version(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without ``info.version``."""
    info = {key: value for key, value in schema.get("info", {}).items() if key != "version"}
    return {**schema, "info": info}


def render(schema: dict[str, Any]) -> str:
    """The snapshot text: stable key order, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Check the snapshot (default) or rewrite it (``--write``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite services/api/openapi.json")
    args = parser.parse_args()
    text = render(document())
    if args.write:
        SNAPSHOT.write_text(text, encoding="utf-8")
    elif not SNAPSHOT.exists() or SNAPSHOT.read_text(encoding="utf-8") != text:
        raise SystemExit("stale OpenAPI snapshot: run python -m services.api.openapi_snapshot --write")


if __name__ == "__main__":
    main()
