"""What every channel shares: the neutral alert message, the provider interface, and the two transports.

A provider is a pure payload builder (``build``: message + channel config → an HTTP request or an email)
plus nothing else; sending is done here by kind of outgoing, so a provider is tested without a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Final, Literal, Protocol, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict

from contracts.v1.failures import AssertionFailure, ErrorFailure, FailureDetail, read_failure
from contracts.v1.regions import display_name
from services.common.netguard import BlockedAddress

log = logging.getLogger(__name__)

MessageEvent = Literal["failure", "recovery", "reminder", "degraded", "flapping", "test"]

#: Colours per event (Discord embeds, Slack attachments' bars, Teams styles are derived from these).
COLOURS: Final[dict[str, int]] = {
    "failure": 0xE01E5A,
    "reminder": 0xF2994A,
    "recovery": 0x2EB67D,
    "degraded": 0xECB22E,
    "flapping": 0x9B51E0,
    "test": 0x1D9BD1,
}
EMOJI: Final[dict[str, str]] = {
    "failure": "🔴",
    "reminder": "🟠",
    "recovery": "✅",
    "degraded": "🟡",
    "flapping": "🟣",
    "test": "🔵",
}
USER_AGENT: Final = "Seymour-Alerts/1"


class RegionLine(BaseModel):
    """A failing region and, briefly, why."""

    model_config = ConfigDict(frozen=True)

    region: str
    name: str
    status: str
    reason: str


class AssertionLine(BaseModel):
    """The first failing assertion: what was expected and what was observed."""

    model_config = ConfigDict(frozen=True)

    source: str
    property: str | None = None
    comparison: str
    target: Any = None
    observed: Any = None
    text: str


class AlertMessage(BaseModel):
    """What one notification says, independent of the channel (stored as the outbox payload)."""

    model_config = ConfigDict(frozen=True)

    event: MessageEvent
    idempotency_key: str
    check_id: uuid.UUID
    check_name: str
    state: str
    title: str
    summary: str
    url: str
    at: datetime
    incident_id: uuid.UUID | None = None
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    resolve_reason: str | None = None
    failing_regions: list[RegionLine] = []
    first_failure: AssertionLine | None = None
    note: str | None = None

    def facts(self) -> list[tuple[str, str]]:
        """Label/value pairs every channel shows (bounded, plain text)."""
        rows = [("Check", self.check_name), ("State", self.state)]
        if self.failing_regions:
            rows.append(("Regions", ", ".join(f"{r.name} ({r.region})" for r in self.failing_regions)))
        if self.first_failure is not None:
            rows.append(("Assertion", self.first_failure.text))
        if self.opened_at is not None:
            rows.append(("Since", self.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
        if self.resolved_at is not None and self.resolve_reason:
            rows.append(("Resolved", self.resolve_reason))
        if self.note:
            rows.append(("Note", self.note))
        return rows


def describe_assertion(detail: FailureDetail | Mapping[str, Any] | None) -> AssertionLine | None:
    """The assertion or error line of a region outcome's failure detail (a model, or its stored JSON);
    ``None`` for a missed run or a kind this version does not know."""
    failure = read_failure(detail)
    if isinstance(failure, AssertionFailure):
        return AssertionLine(
            source=failure.source,
            property=failure.property,
            comparison=failure.comparison,
            target=failure.target,
            observed=failure.observed,
            text=failure.text(),
        )
    if isinstance(failure, ErrorFailure):
        text = failure.text()
        return AssertionLine(source="error", comparison="error", target=None, observed=text, text=text)
    return None


def region_lines(failing: dict[str, Any]) -> list[RegionLine]:
    """Failing regions as lines, ordered by region code."""
    lines = []
    for region in sorted(failing):
        outcome = failing[region]
        detail = outcome.get("detail") or {}
        described = describe_assertion(detail)
        lines.append(
            RegionLine(
                region=region,
                name=display_name(region),
                status=str(outcome.get("status", "failed")),
                reason=described.text if described else str(outcome.get("status", "failed")),
            )
        )
    return lines


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


@dataclass(frozen=True)
class HttpRequest:
    """A JSON POST to a webhook."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailOutgoing:
    """A multipart email to send through the configured SMTP server."""

    to: list[str]
    subject: str
    text: str
    html: str


Outgoing = HttpRequest | EmailOutgoing


@dataclass(frozen=True)
class ChannelInfo:
    """What the rest of Seymour knows about a channel kind, declared once by its provider.

    Redaction, the check form, the check page and the api's error paths read this instead of keeping
    their own lists of kinds, so a new channel is its provider module plus one line in the registry.
    """

    kind: str
    label: str
    model: type[BaseModel]
    #: The field the form's one destination box edits (``url``, ``to``, ``routing_key``, ...).
    destination: str
    #: Fields masked whole when a check is read (write-only secrets).
    secrets: tuple[str, ...] = ()
    #: The ``url`` is itself a credential (a webhook URL): shown as ``scheme://host/********``.
    secret_url: bool = False
    #: The destination is a list, typed comma-separated in the form.
    listed: bool = False
    placeholder: str = ""
    #: Type the destination into a password box (it is a secret too).
    destination_secret: bool = False
    #: The field of the form's second, password box (``None``: the kind has none).
    form_secret: str | None = None
    form_secret_label: str = ""
    form_secret_placeholder: str = ""
    #: How the check page shows the destination; ``{}`` is the destination text.
    shown_as: str = "{}"

    @property
    def sealed_fields(self) -> tuple[str, ...]:
        """The fields stored sealed with the deployment key (see :mod:`services.common.sealing`): the
        secrets, and the URL when it is itself the credential."""
        return (*self.secrets, *(("url",) if self.secret_url and "url" not in self.secrets else ()))

    def destination_text(self, channel: Mapping[str, Any]) -> str:
        """The destination of a (redacted) channel as the form and the check page show it."""
        value = channel.get(self.destination)
        if self.listed:
            return ", ".join(value or [])
        return str(value or "")

    def destination_value(self, text: str) -> Any:
        """The field value for what was typed into the destination box."""
        if self.listed:
            return [part.strip() for part in text.split(",") if part.strip()]
        return text.strip()


ChannelT_contra = TypeVar("ChannelT_contra", bound=BaseModel, contravariant=True)


class Provider(Protocol[ChannelT_contra]):
    """One alert channel kind: what it is (:class:`ChannelInfo`) and a pure payload builder."""

    @property
    def info(self) -> ChannelInfo:
        """The kind's declaration (label, destination and secret fields, its contract model)."""
        ...

    def build(self, message: AlertMessage, channel: ChannelT_contra, now: datetime) -> Outgoing:
        """The request or email that carries ``message`` to ``channel`` (a ``contracts.v1.checks`` model)."""
        ...


@dataclass(frozen=True)
class SmtpConfig:
    """Where email goes (from settings)."""

    host: str | None
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = "seymour@localhost"
    security: str = "starttls"


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one delivery attempt. ``permanent`` failures are not retried."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    duration_ms: float = 0.0


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    return None


def _error_text(exc: BaseException) -> str:
    """A short description of a transport error that never contains the URL (it may be a secret)."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, BlockedAddress):
            return "blocked: the receiver's address is in a blocked network"
        return f"connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return f"smtp {exc.smtp_code}: {text[:200]}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def status_class(status: int) -> str:
    """What an HTTP status says, in a word or two. A receiver's error body is never shown or stored: it
    is the receiver's text, possibly secret or hostile (an internal page a webhook URL points at)."""
    if status == 429:
        return "rate limited"
    if status in (401, 403):
        return "not authorised"
    if status == 404:
        return "not found"
    if 300 <= status < 400:
        return "redirect, not followed"
    if 400 <= status < 500:
        return "rejected"
    if status >= 500:
        return "receiver error"
    return "unexpected status"


async def send_http(
    http: aiohttp.ClientSession, request: HttpRequest, *, time_limit: float, now: datetime
) -> AttemptResult:
    """POST ``request``; classify the answer: 2xx ok, 408/425/429/5xx retry, other 4xx permanent. The
    answer's body is not read. ``http`` should be a :func:`services.common.netguard.guarded_session`."""
    started = time.monotonic()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **request.headers}
    try:
        async with http.post(
            request.url,
            data=request.body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=time_limit),
            allow_redirects=False,
        ) as response:
            elapsed = (time.monotonic() - started) * 1000
            if 200 <= response.status < 300:
                return AttemptResult(ok=True, status=response.status, duration_ms=elapsed)
            retryable = response.status in (408, 425, 429) or response.status >= 500
            return AttemptResult(
                ok=False,
                status=response.status,
                error=f"HTTP {response.status} ({status_class(response.status)})",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), now),
                permanent=not retryable,
                duration_ms=elapsed,
            )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return AttemptResult(
            ok=False, error=_error_text(exc), duration_ms=(time.monotonic() - started) * 1000
        )


def _smtp_send(config: SmtpConfig, mail: EmailMessage, timeout: float) -> None:
    assert config.host is not None
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if config.security == "tls":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=timeout)
    with client:
        client.ehlo()
        if config.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if config.username:
            client.login(config.username, config.password or "")
        client.send_message(mail)


async def send_email(outgoing: EmailOutgoing, smtp: SmtpConfig, *, time_limit: float) -> AttemptResult:
    """Send through SMTP (in a worker thread); 4xx replies and connection errors retry, 5xx do not."""
    started = time.monotonic()
    if not smtp.host:
        return AttemptResult(ok=False, error="SMTP is not configured (SEYMOUR_SMTP_HOST)", permanent=True)
    mail = EmailMessage()
    mail["Subject"] = outgoing.subject
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(outgoing.to)
    mail["Date"] = email.utils.formatdate(usegmt=True)
    mail["Message-ID"] = email.utils.make_msgid(domain="seymour")
    mail.set_content(outgoing.text)
    mail.add_alternative(outgoing.html, subtype="html")
    try:
        await asyncio.wait_for(asyncio.to_thread(_smtp_send, smtp, mail, time_limit), time_limit + 5)
    except smtplib.SMTPResponseException as exc:
        return AttemptResult(
            ok=False,
            status=exc.smtp_code,
            error=_error_text(exc),
            permanent=500 <= exc.smtp_code < 600,
            duration_ms=(time.monotonic() - started) * 1000,
        )
    except (smtplib.SMTPException, OSError, TimeoutError) as exc:
        return AttemptResult(
            ok=False, error=_error_text(exc), duration_ms=(time.monotonic() - started) * 1000
        )
    return AttemptResult(ok=True, status=250, duration_ms=(time.monotonic() - started) * 1000)


async def transmit(
    outgoing: Outgoing,
    *,
    http: aiohttp.ClientSession,
    smtp: SmtpConfig,
    time_limit: float,
    now: datetime,
) -> AttemptResult:
    """Send ``outgoing`` by whichever transport it needs."""
    if isinstance(outgoing, HttpRequest):
        return await send_http(http, outgoing, time_limit=time_limit, now=now)
    return await send_email(outgoing, smtp, time_limit=time_limit)


def check_url(base_url: str, check_id: uuid.UUID) -> str:
    """The check's page in the UI."""
    return f"{base_url.rstrip('/')}/checks/{check_id}"
