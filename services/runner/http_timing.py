"""Phase timings of one run, from aiohttp's ``TraceConfig`` signals and the kernel's own stamps.

A phase must not include the runner's own work: time spent on other runs, on the caller's thread
holding the GIL, or waiting for a core. So where the kernel can say when bytes moved, it does
(:mod:`services.runner.stamped_socket`), and the event loop's clock is only the fallback:

- ``dns_ms``: resolver call, on the loop's clock (``None`` for an IP literal: no lookup happens);
- ``connect_ms``: the kernel's round-trip time of the SYN and its SYN-ACK (``TCP_INFO``); the loop's
  clock from ``connect`` to the loop seeing the connection when the SYN was retransmitted, or when
  more than one address was tried;
- ``tls_ms``: from sending the ClientHello to the arrival of the server's flight that completed the
  handshake (``None`` on plain http); on TLS 1.2 the client's second flight and its wait are inside;
- ``ttfb_ms``: from the request's first bytes leaving (kernel transmit stamp) to the arrival of the
  first response bytes (kernel receive stamp);
- ``download_ms``: from the arrival of the first response bytes to that of the last body bytes read
  (final response only);
- ``total_ms``: for a run that read its body, the sum of the phases above, so the time between
  phases (building the request, the loop getting round to the next step, hops of a redirect chain
  being set up) is not counted; for a failed run, wall-clock time from the start to the failure.

Phases of redirect hops add up (each hop has its own fresh connection), so for a chain ``dns_ms`` is
all the DNS time spent.

aiohttp has no signal between "TCP connected" and "TLS done": the runner's connector calls
:meth:`PhaseTimer.tcp_connected` from the protocol factory, which asyncio invokes once the socket is
connected and before the handshake starts, and :meth:`PhaseTimer.connection_ready` when the protocol
is handed its transport (after the handshake on https).
"""

from __future__ import annotations

from time import perf_counter
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
from yarl import URL

from contracts.v1.runs import Timings
from services.runner.stamped_socket import StampedSocket, seconds_between

_DIGITS: Final = 3


class PhaseTimer:
    """Collects the stamps of one run (all its redirect hops) and turns them into :class:`Timings`."""

    __slots__ = (
        "_body_done",
        "_connect",
        "_connect_start",
        "_dns",
        "_dns_start",
        "_hop_sockets",
        "_hop_tls",
        "_response_at",
        "_sent_at",
        "_sock",
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
        self._hop_sockets = 0
        #: The socket of the current hop's connection (the newest one the connector made).
        self._sock: StampedSocket | None = None

    def request_start(self, scheme: str) -> None:
        """A hop begins: the first request, or the one a redirect leads to."""
        self._hop_tls = scheme == "https"
        self._connect_start = self._tcp_at = self._sent_at = None

    def connection_start(self) -> None:
        """The connector starts making a new connection (DNS comes first, inside it)."""
        self.connections += 1
        self._connect_start = perf_counter()
        self._hop_sockets = 0
        self._sock = None

    def socket_made(self, sock: StampedSocket) -> None:
        """The connector made ``sock`` for this connection (one per address tried)."""
        self._hop_sockets += 1
        self._sock = sock

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
            rtt = None
            if self._sock is not None and self._hop_sockets == 1:
                rtt = self._sock.handshake_rtt_s()
            self._connect = (self._connect or 0.0) + (rtt if rtt is not None else now - self._connect_start)

    def connection_ready(self) -> None:
        """The protocol got its transport (TLS done on https): response bytes can come from now on."""
        if self._sock is not None:
            self._sock.ready()

    def response_bytes(self) -> None:
        """Response bytes were handed to the protocol, straight after the read that brought them."""
        if self._sock is not None:
            self._sock.app_data()

    def connection_end(self) -> None:
        """The connection is ready to send on (TLS done on https)."""
        now = perf_counter()
        if self._tcp_at is None:
            if self._connect_start is not None:
                self._connect = (self._connect or 0.0) + (now - self._connect_start)
            self._tcp_at = now
        elif self._hop_tls:
            tls = None
            if self._sock is not None:
                tls = seconds_between(self._sock.first_tx_ns, self._sock.ready_rx_ns)
            self._tls = (self._tls or 0.0) + (tls if tls is not None else now - self._tcp_at)

    def headers_sent(self) -> None:
        """The request headers are about to go out (aiohttp signals before it writes them)."""
        self._sent_at = perf_counter()
        if self._sock is not None:
            self._sock.request_next()

    def response_start(self) -> None:
        """The response status line and headers arrived (for the final response or a redirect)."""
        now = perf_counter()
        ttfb = None
        if self._sock is not None:
            self._sock.settle()
            ttfb = seconds_between(self._sock.request_tx_ns, self._sock.first_app_rx_ns)
        if ttfb is None:
            ttfb = now - (self._sent_at or self._tcp_at or self.started)
        self._ttfb = (self._ttfb or 0.0) + ttfb
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
            if self._sock is not None:
                download = seconds_between(self._sock.first_app_rx_ns, self._sock.last_app_rx_ns)
            if download is None:
                download = self._body_done - self._response_at
        phases = [_ms(phase) for phase in (dns, self._connect, self._tls, self._ttfb, download)]
        if download is not None and self._ttfb is not None:
            # a complete run: the sum of its phases, not the runner's own work between them
            total = round(sum(phase or 0.0 for phase in phases), _DIGITS)
        else:
            total = round((end - self.started) * 1000.0, _DIGITS)
        return Timings(
            dns_ms=phases[0],
            connect_ms=phases[1],
            tls_ms=phases[2],
            ttfb_ms=phases[3],
            download_ms=phases[4],
            total_ms=total,
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
