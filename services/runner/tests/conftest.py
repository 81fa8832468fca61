"""Real local targets for the runner's tests: an aiohttp app, an HTTPS twin, a silent and a rude server."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from services.runner.http_check import HttpChecker
from services.runner.tests.support import MapResolver
from tests.support.tls import self_signed as make_self_signed

TODO_HEADERS = {"Connection": "close"}


async def _todos(request: web.Request) -> web.Response:
    payload = await request.json()
    todo = {"title": payload.get("title"), "completed": False, "dueDate": None, "id": 101}
    return web.json_response(todo, status=201, headers=TODO_HEADERS)


async def _delay(request: web.Request) -> web.Response:
    await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    return web.Response(text="ok")


async def _redirect(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    if left == 0:
        return web.json_response({"arrived": True})
    raise web.HTTPFound(f"/redirect/{left - 1}")


async def _redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["url"])


async def _big(request: web.Request) -> web.StreamResponse:
    size = int(request.match_info["size"])
    body = json.dumps({"pad": "x" * max(0, size - 11)}).encode()
    if request.query.get("chunked"):
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        for start in range(0, len(body), 65536):
            await response.write(body[start : start + 65536])
        await response.write_eof()
        return response
    return web.Response(body=body, content_type="application/json")


async def _gzip_bomb(request: web.Request) -> web.Response:
    body = gzip.compress(b"x" * int(request.match_info["size"]))
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})


async def _status(request: web.Request) -> web.Response:
    return web.json_response({"status": "down"}, status=int(request.match_info["code"]))


async def _echo(request: web.Request) -> web.Response:
    body = await request.text()
    headers = dict(request.headers)
    return web.json_response({"method": request.method, "headers": headers, "body": body})


async def _login_like(request: web.Request) -> web.Response:
    response = web.json_response({"access_token": "tok-abcdef-123", "expires_in": 3600})
    response.set_cookie("session", "cookie-value-123", httponly=True)
    return response


def target_app() -> web.Application:
    """Every endpoint the tests call."""
    app = web.Application()
    app.router.add_post("/todos", _todos)
    app.router.add_get("/delay/{ms}", _delay)
    app.router.add_get("/redirect/{n}", _redirect)
    app.router.add_get("/redirect-to", _redirect_to)
    app.router.add_get("/big/{size}", _big)
    app.router.add_get("/gzip/{size}", _gzip_bomb)
    app.router.add_get("/status/{code}", _status)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/login-like", _login_like)
    return app


async def _serve(app: web.Application, context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    port = server.sockets[0].getsockname()[1]
    return runner, port


@pytest.fixture
async def target() -> AsyncIterator[str]:
    """Base URL of the plain-HTTP target app on 127.0.0.1."""
    runner, port = await _serve(target_app())
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1 / localhost."""
    return Cert(*make_self_signed(tmp_path_factory.mktemp("tls")))


@pytest.fixture
async def tls_target(self_signed: Cert) -> AsyncIterator[str]:
    """Base URL of the target app over HTTPS with the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(self_signed.cert, self_signed.key)
    runner, port = await _serve(target_app(), context)
    yield f"https://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def garbage_port() -> AsyncIterator[int]:
    """A port that answers every request with bytes that are not HTTP."""

    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HELLO THIS IS NOT HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(rude, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def resolver() -> MapResolver:
    """Resolves ``target.test`` to loopback and ``metadata.test`` to the cloud metadata address."""
    return MapResolver({"target.test": "127.0.0.1", "metadata.test": "169.254.169.254"})


@pytest.fixture
async def checker(resolver: MapResolver) -> AsyncIterator[HttpChecker]:
    """A started checker with the default guard and the map resolver (tests never query real DNS)."""
    instance = HttpChecker(region="eu-north-1", resolver=resolver, limit=32)
    await instance.start()
    yield instance
    await instance.stop()


@pytest.fixture
async def trusting_checker(self_signed: Cert, resolver: MapResolver) -> AsyncIterator[HttpChecker]:
    """A checker that trusts the self-signed certificate."""
    context = ssl.create_default_context(cafile=str(self_signed.cert))
    instance = HttpChecker(region="eu-north-1", resolver=resolver, ssl_context=context)
    await instance.start()
    yield instance
    await instance.stop()
