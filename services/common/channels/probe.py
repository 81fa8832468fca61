"""One test message to a check's channel, sent now and not queued: the "send test" button of the api."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from datetime import datetime
from typing import Any, Final

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.common.channels import PROVIDERS
from services.common.channels.base import AlertMessage, SmtpConfig, check_url, transmit
from services.common.db.models import Check
from services.common.db.sessions import Sessions
from services.common.errors import NotFound
from services.common.netguard import AddressGuard, guarded_session
from services.common.sealing import open_channel
from services.common.secretbox import LazyBox, Sealer, SealError
from services.common.settings import Settings

log = logging.getLogger(__name__)

#: A user may send one test to a channel every ``PER_CHANNEL_S`` seconds, and ``PER_USER`` tests a
#: minute in all: "Send test" must not turn Seymour into a request cannon aimed at a receiver.
PER_CHANNEL_S: Final = 10.0
PER_USER: Final = 10


class TooSoon(Exception):
    """A test send refused by the rate limit; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many test sends; try again in {retry_after:.0f} s")
        self.retry_after = retry_after


class ProbeLimiter:
    """In-memory sliding windows per user × channel and per user (one api process holds one)."""

    def __init__(self, per_channel_s: float = PER_CHANNEL_S, per_user: int = PER_USER) -> None:
        self._per_channel_s = per_channel_s
        self._per_user = per_user
        self._last: dict[tuple[Any, uuid.UUID, int], float] = {}
        self._recent: dict[Any, deque[float]] = {}

    def wait_for(self, who: Any, check_id: uuid.UUID, index: int, now: float | None = None) -> float:
        """Seconds until ``who`` may test this channel (0: allowed now, and counted)."""
        now = time.monotonic() if now is None else now
        key = (who, check_id, index)
        last = self._last.get(key)
        if last is not None and now - last < self._per_channel_s:
            return self._per_channel_s - (now - last)
        recent = self._recent.setdefault(who, deque())
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= self._per_user:
            return 60.0 - (now - recent[0])
        recent.append(now)
        self._last[key] = now
        if len(self._last) > 10_000:  # forget the oldest keys rather than grow without bound
            for stale in [k for k, at in self._last.items() if now - at >= self._per_channel_s]:
                del self._last[stale]
        return 0.0


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP server from settings."""
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        sender=settings.smtp_from,
        security=settings.smtp_security,
    )


async def send_test_notification(
    sessions: Sessions,
    settings: Settings,
    check_id: uuid.UUID,
    channel_index: int,
    *,
    now: datetime | None = None,
    time_limit: float = 10.0,
    limiter: ProbeLimiter | None = None,
    who: Any = None,
    box: Sealer | None = None,
) -> dict[str, Any]:
    """Send one "test" message to a check's channel right now (one attempt, not queued) and say how it went.

    Returns ``{"ok", "channel", "status", "error", "duration_ms"}``; raises :class:`NotFound` when the check
    or the channel does not exist, :class:`TooSoon` when ``limiter`` says ``who`` must wait. The channel's
    sealed secrets are opened with ``box`` (the deployment's key when not given) for this send only.
    """
    now = now or utcnow()
    async with sessions() as session:
        check = await session.get(Check, check_id)
    if check is None:
        raise NotFound(f"no check {check_id}")
    spec = CheckSpec.model_validate(check.spec)
    if not 0 <= channel_index < len(spec.alerts):
        raise NotFound(f"check {check_id} has no channel {channel_index}")
    channel = spec.alerts[channel_index]
    if limiter is not None:
        wait = limiter.wait_for(who, check_id, channel_index)
        if wait > 0:
            raise TooSoon(wait)
    message = AlertMessage(
        event="test",
        idempotency_key=f"test:{check_id}:{channel_index}:{int(now.timestamp())}",
        check_id=check_id,
        check_name=spec.name,
        state="test",
        title=f"Test notification for {spec.name}",
        summary=f"This is a test of the {channel.channel} channel of {spec.name}. Nothing is wrong.",
        url=check_url(settings.public_base_url(), check_id),
        at=now,
    )
    try:
        opened = open_channel(channel, box or LazyBox(settings))
    except SealError:
        log.warning("test notification check_id=%s channel=%s: secret not opened", check_id, channel.channel)
        return {
            "ok": False,
            "channel": channel.channel,
            "status": None,
            "error": "the channel's secret does not open with this deployment key",
            "duration_ms": 0.0,
        }
    outgoing = PROVIDERS[channel.channel].build(message, opened, now)
    async with guarded_session(AddressGuard.from_settings(settings)) as http:
        smtp = smtp_config(settings)
        result = await transmit(outgoing, http=http, smtp=smtp, time_limit=time_limit, now=now)
    log.info("test notification check_id=%s channel=%s ok=%s", check_id, channel.channel, result.ok)
    return {
        "ok": result.ok,
        "channel": channel.channel,
        "status": result.status,
        "error": result.error,
        "duration_ms": round(result.duration_ms, 1),
    }
