"""One test message to a check's channel, sent now and not queued: the "send test" button of the api."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.common.channels import PROVIDERS
from services.common.channels.base import AlertMessage, SmtpConfig, check_url, transmit
from services.common.db.models import Check
from services.common.errors import NotFound
from services.common.settings import Settings

log = logging.getLogger(__name__)


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
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    check_id: uuid.UUID,
    channel_index: int,
    *,
    now: datetime | None = None,
    time_limit: float = 10.0,
) -> dict[str, Any]:
    """Send one "test" message to a check's channel right now (one attempt, not queued) and say how it went.

    Returns ``{"ok", "channel", "status", "error", "duration_ms"}``; raises :class:`NotFound` when the check
    or the channel does not exist.
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
    outgoing = PROVIDERS[channel.channel].build(message, channel, now)
    async with aiohttp.ClientSession() as http:
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
