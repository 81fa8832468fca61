"""Sends one check's HTTP request and turns whatever happens into a result — never into a crash.

One ``aiohttp.ClientSession`` per runner; every run gets a fresh connection (``force_close`` connector,
no DNS cache), so DNS, connect and TLS are paid and timed on every run, as the check's users pay them.
The session lives on the runner's HTTP loop (:mod:`services.runner.http_loop`), a thread whose event
loop only sends requests and reads responses: rendering, assertions, sampling and everything else the
runner does stay on the caller's loop, so that work never delays a timed send or wake-up.

Outcomes:

- ``passed``/``failed``: the endpoint answered; ``failed`` when an assertion did not hold (``error`` is
  then ``{class: assertion, message: <first failing assertion>}``).
- ``error``: no usable response. ``dns``, ``connect``, ``tls``, ``timeout`` (``spec.timeout`` for the whole
  run, redirects and body included), ``blocked`` (the address is in a blocked network),
  ``http_error`` (a protocol failure: malformed response, connection closed without a response, more
  than ``max_redirects`` redirects), ``too_large`` (see below), ``internal`` (a bug here, logged),
  ``assertion`` (an assertion cannot be evaluated: a regex the linear-time engine refuses, in a check
  stored before that rule; no request is sent).

Body size: the body is read up to ``max_response_bytes``; a longer body is cut there and
``response.truncated`` is set. That is only an error when a ``json_body`` assertion needs the whole
document: then the run is ``error``/``too_large``. Status, header, response-time and text assertions
still evaluate (text on the truncated text).

The body is always read (up to the cap): that is the ``download_ms`` phase and the stored sample. It
is decoded as text or parsed as JSON only when an assertion needs it (the sample decodes a prefix).

Redirects: followed when ``follow_redirects``; a chain of up to ``max_redirects`` redirects is fine, one
more is ``http_error`` (so ``max_redirects: 0`` with ``follow_redirects`` makes any redirect an error).
Cookies are never kept between runs, nor within a chain.

Blocked networks (DESIGN §9): the connector's socket factory sees every address actually about to be
connected — IP literals, every resolved address, every redirect hop — and refuses the blocked ones
before a socket exists, by :class:`services.common.netguard.AddressGuard` (the fixed set, private
networks where set, the settings' additions; wrapped IPv4 unwrapped).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import os
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDictProxy
from yarl import URL

import services
from contracts.v1.base import utcnow
from contracts.v1.checks import CheckSpec, RequestSpec
from contracts.v1.runs import (
    AssertionOutcome,
    CertificateInfo,
    ErrorClass,
    ResponseSample,
    RunError,
    StepOutcome,
    Timings,
)
from services.common.netguard import AddressGuard
from services.common.redaction import (
    redact_headers,
    redact_json,
    redact_response_headers,
    redact_text,
    redact_url,
)
from services.runner.assertions import ResponseFacts, evaluate, needs_json, unrunnable
from services.runner.budget import BodyBudget
from services.runner.certificate import certificate_from_der, peer_der, rejected_certificate
from services.runner.http_loop import HttpLoop
from services.runner.http_timing import PhaseTimer, trace_config
from services.runner.stamped_socket import StampedSocket

log = logging.getLogger(__name__)

RunStatus = Literal["passed", "failed", "error"]

#: The stored response keeps this much of the body (as text); the assertions see up to the cap.
SAMPLE_BODY_CHARS: Final = 8192
SAMPLE_HEADER_CHARS: Final = 2000
SAMPLE_MAX_HEADERS: Final = 100
REQUEST_BODY_CHARS: Final = 2000
ERROR_MESSAGE_CHARS: Final = 500
_READ_CHUNK: Final = 64 * 1024


def user_agent(region: str) -> str:
    """The User-Agent a runner sends unless the check sets its own."""
    return f"Seymour/{services.__version__} (+region={region})"


@dataclass
class _RunState:
    """Per-run facts the connector's hooks record (reached through a context variable): for each
    connection of the run (numbered by the timer), the addresses refused and how many were tried."""

    timer: PhaseTimer
    blocked: dict[int, list[str]] = field(default_factory=dict)
    attempted: dict[int, int] = field(default_factory=dict)
    #: The TLS object of the latest connection: it holds the certificate the server presented.
    ssl_object: Any = None
    #: The address (vetted by the guard) of the latest connection attempt.
    address: tuple[str, int] | None = None

    def refused_only(self) -> list[str]:
        """The addresses refused for the latest connection, if nothing else was tried for it."""
        current = self.timer.connections
        if self.attempted.get(current, 0):
            return []
        return self.blocked.get(current, [])


_RUN: Final[contextvars.ContextVar[_RunState | None]] = contextvars.ContextVar("seymour_run", default=None)


def _timed_protocol(factory: Any) -> Any:
    """The protocol factory, stamping "TCP connected" first (asyncio calls it before the TLS handshake),
    then telling the run's socket when the connection is established and when response bytes come."""
    state = _RUN.get()
    protocol = factory()
    if state is not None:
        timer = state.timer
        timer.tcp_connected()
        made, received = protocol.connection_made, protocol.data_received

        def connection_made(transport: Any) -> None:
            # After the TLS handshake; aiohttp drops the transport when it closes the connection.
            state.ssl_object = transport.get_extra_info("ssl_object")
            timer.connection_ready()
            made(transport)

        def data_received(data: bytes) -> None:
            # Called by the transport right after the read that brought ``data`` (its kernel stamp).
            timer.response_bytes()
            received(data)

        protocol.connection_made = connection_made
        protocol.data_received = data_received
    return protocol


class _Connector(aiohttp.TCPConnector):
    """A fresh connection per request, every address vetted by the guard, TCP vs TLS time split."""

    def __init__(self, guard: AddressGuard, **kwargs: Any) -> None:
        self._guard = guard
        super().__init__(socket_factory=self._socket, force_close=True, use_dns_cache=False, **kwargs)
        self._factory = functools.partial(_timed_protocol, self._factory)

    def _socket(self, addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        host, port = address[0], address[1]
        state = _RUN.get()
        network = self._guard.blocking_network(host)
        if network is not None and state is not None:
            refused = state.blocked.setdefault(state.timer.connections, [])
            refused.append(f"{host} (in blocked network {network})")
        self._guard.check(host, port)
        if state is not None:
            current = state.timer.connections
            state.attempted[current] = state.attempted.get(current, 0) + 1
            state.address = (host, port)
        sock = StampedSocket(family, kind, proto)
        if state is not None:
            state.timer.socket_made(sock)
        return sock


@dataclass(frozen=True, slots=True)
class _Exchange:
    """What one timed exchange on the HTTP loop yields: the response as read, or the failure, and the
    timings as they stood when it ended (the run's state tells how a failure is classified)."""

    state: _RunState
    timings: Timings
    failure: Exception | None = None
    final_url: URL | None = None
    status_code: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False
    charset: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    der: bytes | None = None


async def _exchange(
    session: aiohttp.ClientSession,
    request: RequestSpec,
    headers: dict[str, str],
    data: bytes | str | None,
    seconds: float,
    cookies: Mapping[str, str] | None,
) -> _Exchange:
    """Send ``request`` and read its response within ``seconds``, on the HTTP loop. Only what must
    happen while the connection is live happens here (the certificate is taken as bytes, summarised
    by the caller)."""
    state = _RunState(PhaseTimer())
    token = _RUN.set(state)
    try:
        async with (
            asyncio.timeout(seconds),
            session.request(
                request.method,
                request.url,
                headers=headers,
                data=data,
                allow_redirects=request.follow_redirects,
                max_redirects=request.max_redirects + 1,
                ssl=request.verify_tls,
                trace_request_ctx=state.timer,
                cookies=dict(cookies) if cookies else None,
            ) as response,
        ):
            der = peer_der(state.ssl_object) if response.url.scheme == "https" else None
            received = {name: morsel.value for name, morsel in response.cookies.items()}
            body, truncated = await _read_capped(response, request.max_response_bytes)
            state.timer.body_done()
            return _Exchange(
                state,
                state.timer.timings(),
                final_url=response.url,
                status_code=response.status,
                headers=_joined_headers(response.headers),
                body=body,
                truncated=truncated,
                charset=response.charset,
                cookies=received,
                der=der,
            )
    except Exception as exc:
        return _Exchange(state, state.timer.timings(), failure=exc)
    finally:
        _RUN.reset(token)


@dataclass(frozen=True)
class CheckResult:
    """Everything a ``CheckCompleted`` reports about one run."""

    status: RunStatus
    started_at: datetime
    completed_at: datetime
    timings: Timings
    request: dict[str, Any]
    response: ResponseSample | None = None
    error: RunError | None = None
    assertions: list[AssertionOutcome] = field(default_factory=list)
    degraded: bool = False
    certificate: CertificateInfo | None = None
    steps: list[StepOutcome] | None = None
    failed_step: str | None = None
    #: What the assertions saw (extractions read the whole body from it) and the cookies set; not sent.
    facts: ResponseFacts | None = None
    cookies: dict[str, str] = field(default_factory=dict)


#: The body budget of a checker built without one (``Settings.runner_memory_budget_mb``'s default).
DEFAULT_BUDGET_BYTES: Final = 256 * 1024 * 1024


class HttpChecker:
    """Runs checks over one shared session. A :class:`~services.common.service.Lifecycle`."""

    def __init__(
        self,
        *,
        region: str,
        guard: AddressGuard | None = None,
        resolver: AbstractResolver | None = None,
        limit: int = 256,
        ssl_context: ssl.SSLContext | None = None,
        budget: BodyBudget | None = None,
    ) -> None:
        self.region = region
        self._budget = budget or BodyBudget(DEFAULT_BUDGET_BYTES)
        self.user_agent = user_agent(region)
        self._guard = guard or AddressGuard()
        self._resolver = resolver
        self._limit = limit
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._stopped = False
        self._http = HttpLoop()
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Start the HTTP loop and open the session on it (idempotent; ``run`` also does, for a
        consumer that starts first)."""
        async with self._starting:
            if self._session is not None:
                return
            self._stopped = False
            self._http.start()
            self._session = await self._http.call(self._open())

    async def _open(self) -> aiohttp.ClientSession:
        """The session, made on the HTTP loop (a session belongs to the loop it was made on)."""
        connector = _Connector(
            self._guard,
            limit=self._limit,
            limit_per_host=0,
            resolver=self._resolver,
            ssl=self._ssl_context if self._ssl_context is not None else True,
        )
        return aiohttp.ClientSession(
            connector=connector,
            trace_configs=[trace_config()],
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            raise_for_status=False,
        )

    async def stop(self) -> None:
        """Close the session, then stop the HTTP loop."""
        self._stopped = True
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(RuntimeError):
                await self._http.call(session.close())
        await self._http.stop()

    async def run(self, spec: CheckSpec, secrets: Mapping[str, str] | None = None) -> CheckResult:
        """Run ``spec``: its steps and teardown, or its one request (placeholders rendered either way,
        ``secrets`` being the values of its ``{{ secrets.x }}``). Raises only once the checker was stopped."""
        from services.runner.scenario import run_scenario

        bodies = spec.request.max_response_bytes  # a check without steps: its one request
        if spec.is_multi_step():
            bodies = sum(step.request.max_response_bytes for step in (*spec.steps, *spec.teardown))
        async with self._budget.hold(bodies):
            return await run_scenario(
                self.run_request, spec, variables=spec.global_variables, secrets=secrets
            )

    async def run_request(self, spec: CheckSpec, cookies: Mapping[str, str] | None = None) -> CheckResult:
        """Send ``spec``'s request as it is (no placeholders left), evaluate its assertions. ``cookies``
        are sent with it (a scenario that shares cookies passes those earlier steps received)."""
        if self._session is None:
            if self._stopped:
                raise RuntimeError("HttpChecker.run() after stop()")
            await self.start()
            assert self._session is not None
        request = spec.request
        headers = dict(request.headers)
        lowered = {name.lower() for name in headers}
        if "user-agent" not in lowered:
            headers["User-Agent"] = self.user_agent
        data: bytes | str | None = None
        if isinstance(request.body, dict | list):
            data = json.dumps(request.body, separators=(",", ":"), ensure_ascii=False).encode()
            if "content-type" not in lowered:
                headers["Content-Type"] = "application/json"
        elif isinstance(request.body, str):
            data = request.body
        sent = request_record(request.method, request.url, headers, request.body, request.secret_headers)
        started_at = utcnow()
        refused = unrunnable(spec.assertions)
        if refused is not None:
            unusable = RunError(cls="assertion", message=refused[:ERROR_MESSAGE_CHARS])
            return CheckResult("error", started_at, utcnow(), PhaseTimer().timings(), sent, error=unusable)
        exchange = await self._http.call(
            _exchange(self._session, request, headers, data, spec.timeout, cookies)
        )
        if exchange.failure is not None:
            failure = _classify(exchange.failure, exchange.state, spec)
            certificate = None
            if failure.cls == "tls" and exchange.state.address is not None:
                probe = rejected_certificate(exchange.state.address, urlsplit(request.url).hostname or "")
                certificate = await self._http.call(probe)
            return CheckResult(
                "error", started_at, utcnow(), exchange.timings, sent, error=failure, certificate=certificate
            )
        certificate = None
        if exchange.final_url is not None and exchange.final_url.scheme == "https":
            certificate = certificate_from_der(exchange.der, exchange.final_url.host or "")
        timings, truncated = exchange.timings, exchange.truncated
        total_ms = timings.total_ms or 0.0
        facts = ResponseFacts(
            exchange.status_code,
            total_ms,
            exchange.headers,
            exchange.body,
            truncated,
            exchange.charset,
            timings,
            certificate,
        )
        outcomes = evaluate(spec.assertions, facts)
        sample = _sample(facts)
        threshold = spec.alert_policy.degraded_response_time
        degraded = threshold is not None and total_ms > threshold
        status: RunStatus
        if truncated and needs_json(spec.assertions):
            status = "error"
            error: RunError | None = RunError(
                cls="too_large",
                message=f"body over {request.max_response_bytes} bytes; JSON assertions need the whole body",
            )
        elif all(outcome.passed for outcome in outcomes):
            status, error = "passed", None
        else:
            failing = next(outcome for outcome in outcomes if not outcome.passed)
            status, error = "failed", RunError(cls="assertion", message=failing.message or "")
        return CheckResult(
            status,
            started_at,
            utcnow(),
            timings,
            sent,
            sample,
            error,
            outcomes,
            degraded=degraded,
            certificate=certificate,
            facts=facts,
            cookies=exchange.cookies,
        )


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """The body up to ``cap`` bytes, and whether there was more."""
    length = response.content_length
    if length is not None and length <= cap and "Content-Encoding" not in response.headers:
        return await response.read(), False  # the cap applies to the decoded body: only when not compressed
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await response.content.read(min(_READ_CHUNK, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    if size > cap:
        return body[:cap], True
    return body, False


def _joined_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with ``", "`` as HTTP lists are."""
    joined: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _sample(facts: ResponseFacts) -> ResponseSample:
    """The bounded response kept with the run, with ``Set-Cookie``, secret-named headers and tokens in
    the body masked (assertions saw the real response; the stored sample is shown to every viewer)."""
    headers = redact_response_headers(
        {
            name: value[:SAMPLE_HEADER_CHARS]
            for name, value in list(facts.headers.items())[:SAMPLE_MAX_HEADERS]
        }
    )
    text, cut = facts.text_prefix(SAMPLE_BODY_CHARS)
    text = redact_text(text) if text else text
    return ResponseSample(
        status_code=facts.status_code,
        headers=headers,
        body=text or None,
        truncated=facts.truncated or cut,
        size=len(facts.body),
    )


def request_record(
    method: str, url: str, headers: Mapping[str, str], body: Any, secret_headers: Sequence[str] = ()
) -> dict[str, Any]:
    """The request as sent, for the run's record: secret header, query and body values masked."""
    record_body: Any = None
    if isinstance(body, dict | list):
        record_body = redact_json(body)
        text = json.dumps(record_body, ensure_ascii=False)
        if len(text) > REQUEST_BODY_CHARS:
            record_body = text[:REQUEST_BODY_CHARS] + "…"
    elif isinstance(body, str):
        record_body = redact_text(
            body if len(body) <= REQUEST_BODY_CHARS else body[:REQUEST_BODY_CHARS] + "…"
        )
    return {
        "method": method,
        "url": redact_url(url),
        "headers": redact_headers(headers, secret_headers),
        "body": record_body,
    }


def _classify(exc: Exception, state: _RunState, spec: CheckSpec) -> RunError:
    """The error class a user should see for a run that got no usable response."""
    cls: ErrorClass
    if isinstance(exc, TimeoutError):
        cls = "timeout"
        message = f"no complete response within {spec.timeout:g} s ({state.timer.phase})"
    elif isinstance(exc, aiohttp.ClientConnectorError) and (refused := state.refused_only()):
        cls = "blocked"
        message = "refused to connect to " + ", ".join(refused)
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        cls = "dns"
        message = f"could not resolve {exc.host}: {_os_reason(exc)}"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        cls = "tls"
        message = f"TLS failed: {_reason(exc)}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        cls = "connect"
        message = f"could not connect to {exc.host}:{exc.port}: {_os_reason(exc)}"
    elif isinstance(exc, aiohttp.TooManyRedirects):
        cls = "http_error"
        message = f"more than {spec.request.max_redirects} redirects"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        cls = "http_error"
        message = "the server closed the connection without a complete response"
    elif isinstance(exc, aiohttp.ClientOSError):
        cls = "connect"
        message = f"connection failed: {_os_reason(exc)}"
    elif isinstance(exc, aiohttp.ClientError | ValueError):
        cls = "http_error"
        message = f"{type(exc).__name__}: {_reason(exc)}"
    else:
        cls = "internal"
        message = f"{type(exc).__name__}: {_reason(exc)}"
        # the host only: a rendered path or query may hold a check's secret
        log.error("runner internal error host=%s", urlsplit(spec.request.url).hostname, exc_info=exc)
    return RunError(cls=cls, message=message[:ERROR_MESSAGE_CHARS])


def _os_reason(exc: aiohttp.ClientOSError) -> str:
    inner = getattr(exc, "os_error", None)
    if isinstance(inner, OSError):
        if isinstance(inner.errno, int) and inner.errno > 0 and not isinstance(inner, socket.gaierror):
            return os.strerror(inner.errno)
        if inner.strerror:
            return inner.strerror
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
