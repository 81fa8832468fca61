"""A fast local HTTP target for benchmarks, in its own process so it does not share the measured loop.

``GET /fast`` answers at once; ``GET /delay/<ms>`` answers after that many milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

BODY = b'{"ok": true, "id": 1, "title": "demo", "completed": false, "dueDate": null}'


async def fast(_: web.Request) -> web.Response:
    """Answer at once."""
    return web.Response(body=BODY, content_type="application/json")


async def delayed(request: web.Request) -> web.Response:
    """Answer after the delay named in the path."""
    await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    """Serve on 127.0.0.1:PORT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/fast", fast)
    app.router.add_get("/delay/{ms:\\d+}", delayed)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
