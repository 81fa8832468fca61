"""Phase timings of one run from aiohttp's ``TraceConfig`` signals, on the monotonic clock.

Every stamp is ``time.perf_counter()`` taken inside the request's own coroutine, at the moment aiohttp
reaches that phase. Phases of redirect hops add up (each hop has its own fresh connection), so for a
chain ``dns_ms`` is all the DNS time spent, and ``total_ms`` covers the whole chain plus the body read.

- ``dns_ms``: resolver call (``None`` for an IP literal: no lookup happens);
- ``connect_ms``: TCP connect, until the socket is connected;
- ``tls_ms``: TLS handshake (``None`` on plain http);
- ``ttfb_ms``: from the request headers sent to the response headers received (server think time);
- ``download_ms``: from the response headers to the end of the body read (final response only);
- ``total_ms``: from the start of the run to the end of the body read (or to the failure).

aiohttp has no signal between "TCP connected" and "TLS done": the runner's connector calls
:meth:`PhaseTimer.tcp_connected` from the protocol factory, which asyncio invokes once the socket is
connected and before the handshake starts.
"""

from __future__ import annotations

from time import perf_counter
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
from yarl import URL

from contracts.v1.runs import Timings

_DIGITS: Final = 3


class PhaseTimer:
    """Collects the stamps of one run (all its redirect hops) and turns them into :class:`Timings`."""

    __slots__ = (
        "_body_done",
        "_connect",
        "_connect_start",
        "_dns",
        "_dns_start",
        "_hop_tls",
        "_response_at",
        "_sent_at",
        "_tcp_at",
        "_tls",
        "_ttfb",
        "connections",
        "started",
    )

    def __init__(self) -> None:
        self.started = perf_counter()
        self.connections = 0
        self._dns: float | None = None
        self._connect: float | None = None
        self._tls: float | None = None
        self._ttfb: float | None = None
        self._dns_start: float | None = None
        self._connect_start: float | None = None
        self._tcp_at: float | None = None
        self._sent_at: float | None = None
        self._response_at: float | None = None
        self._body_done: float | None = None
        self._hop_tls = False

    def request_start(self, scheme: str) -> None:
        """A hop begins: the first request, or the one a redirect leads to."""
        self._hop_tls = scheme == "https"
        self._connect_start = self._tcp_at = self._sent_at = None

    def connection_start(self) -> None:
        """The connector starts making a new connection (DNS comes first, inside it)."""
        self.connections += 1
        self._connect_start = perf_counter()

    def dns_start(self) -> None:
        """The resolver is called."""
        self._dns_start = perf_counter()

    def dns_end(self) -> None:
        """The resolver answered; the TCP connect starts now."""
        now = perf_counter()
        if self._dns_start is not None:
            self._dns = (self._dns or 0.0) + (now - self._dns_start)
            self._dns_start = None
        self._connect_start = now

    def tcp_connected(self) -> None:
        """The socket is connected (called from the protocol factory, before any TLS handshake)."""
        now = perf_counter()
        if self._tcp_at is None and self._connect_start is not None:
            self._tcp_at = now
            self._connect = (self._connect or 0.0) + (now - self._connect_start)

    def connection_end(self) -> None:
        """The connection is ready to send on (TLS done on https)."""
        now = perf_counter()
        if self._tcp_at is None:
            if self._connect_start is not None:
                self._connect = (self._connect or 0.0) + (now - self._connect_start)
            self._tcp_at = now
        elif self._hop_tls:
            self._tls = (self._tls or 0.0) + (now - self._tcp_at)

    def headers_sent(self) -> None:
        """The request headers went out."""
        self._sent_at = perf_counter()

    def response_start(self) -> None:
        """The response status line and headers arrived (for the final response or a redirect)."""
        now = perf_counter()
        since = self._sent_at or self._tcp_at or self.started
        self._ttfb = (self._ttfb or 0.0) + (now - since)
        self._response_at = now
        self._sent_at = None

    def body_done(self) -> None:
        """The body was read (up to the cap)."""
        self._body_done = perf_counter()

    @property
    def phase(self) -> str:
        """Where the run is now, for a timeout message."""
        if self._body_done is not None:
            return "done"
        if self._sent_at is not None:
            return "waiting for the response"
        if self._response_at is not None:
            return "reading the body"
        if self._dns_start is not None:
            return "resolving the name"
        if self._tcp_at is not None:
            return "sending the request"
        if self._connect_start is not None:
            return "connecting"
        return "starting"

    def timings(self) -> Timings:
        """The phases measured so far; ``total_ms`` up to now (or the end of the body read)."""
        end = self._body_done if self._body_done is not None else perf_counter()
        dns = self._dns
        if self._dns_start is not None:  # the lookup failed or is still running
            dns = (dns or 0.0) + (end - self._dns_start)
        download = None
        if self._body_done is not None and self._response_at is not None:
            download = _ms(self._body_done - self._response_at)
        return Timings(
            dns_ms=_ms(dns),
            connect_ms=_ms(self._connect),
            tls_ms=_ms(self._tls),
            ttfb_ms=_ms(self._ttfb),
            download_ms=download,
            total_ms=_ms(end - self.started),
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, _DIGITS)


def _timer(ctx: SimpleNamespace) -> PhaseTimer | None:
    timer = ctx.trace_request_ctx
    return timer if isinstance(timer, PhaseTimer) else None


async def _on_request_start(_: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.request_start(params.url.scheme)


async def _on_redirect(_: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestRedirectParams) -> None:
    """A redirect response ends a hop; the next hop's scheme decides whether it has a TLS phase."""
    if (timer := _timer(ctx)) is not None:
        timer.response_start()
        location = params.response.headers.get("Location", "")
        try:
            scheme = URL(location).scheme or params.response.url.scheme
        except ValueError:
            scheme = params.response.url.scheme
        timer.request_start(scheme)


async def _on_connection_create_start(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.connection_start()


async def _on_dns_start(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.dns_start()


async def _on_dns_end(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.dns_end()


async def _on_connection_create_end(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.connection_end()


async def _on_headers_sent(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.headers_sent()


async def _on_response(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    if (timer := _timer(ctx)) is not None:
        timer.response_start()


def trace_config() -> aiohttp.TraceConfig:
    """A ``TraceConfig`` feeding the :class:`PhaseTimer` passed as ``trace_request_ctx``."""
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_on_request_start)
    config.on_connection_create_start.append(_on_connection_create_start)
    config.on_dns_resolvehost_start.append(_on_dns_start)
    config.on_dns_resolvehost_end.append(_on_dns_end)
    config.on_connection_create_end.append(_on_connection_create_end)
    config.on_request_headers_sent.append(_on_headers_sent)
    config.on_request_end.append(_on_response)
    config.on_request_redirect.append(_on_redirect)
    config.freeze()
    return config
