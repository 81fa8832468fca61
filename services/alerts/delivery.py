"""The outbox sender: delivers pending ``notifications`` rows with retries, so nothing is lost or sent twice.

Rows are written in the same transaction as the incident transition (see :mod:`services.alerts.incidents`).
This loop claims due rows (a lease in ``next_attempt_at``, so a process that dies mid-send lets another
retry after the lease, and two senders never take the same row), sends, and records every attempt:

* 2xx → ``sent``. 408/425/429/5xx, timeouts and connection errors → retried with exponential backoff and
  full jitter, or after ``Retry-After`` when the receiver says so. Other 4xx / SMTP 5xx → ``failed`` at once.
* A row is given up (``failed``, counted in ``seymour_notifications_failed_total``) after ``max_attempts`` or
  when its next attempt would fall past ``give_up_after`` from its creation.
* Deliveries run concurrently (bounded), at most ``per_destination`` at once per check × channel, each with
  a timeout: a dead channel never holds up other channels or other checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import or_, select, update

from contracts.v1 import CheckSpec
from services.common.channels import PROVIDERS
from services.common.channels.base import AlertMessage, AttemptResult, SmtpConfig, transmit
from services.common.db.models import Check, Notification
from services.common.db.sessions import Sessions
from services.common.metrics import METRICS, Registry
from services.common.netguard import AddressGuard, guarded_session
from services.common.sealing import open_channel
from services.common.secretbox import Sealer, SealError
from services.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ATTEMPT_LOG_MAX = 50


@dataclass(frozen=True)
class DeliveryConfig:
    """Retry and concurrency knobs."""

    poll_interval: float = 1.0
    concurrency: int = 16
    per_destination: int = 2
    timeout: float = 10.0
    lease: float = 60.0
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    max_retry_after: float = 900.0
    max_attempts: int = 12
    give_up_after: float = 3600.0


def next_delay(attempts: int, result: AttemptResult, config: DeliveryConfig, rng: random.Random) -> float:
    """Seconds before the next attempt: ``Retry-After`` (capped) if given, else capped exponential backoff
    with jitter in [½, 1] of the step."""
    if result.retry_after is not None:
        return min(result.retry_after, config.max_retry_after)
    step = min(config.backoff_cap, config.backoff_base * 2 ** max(0, attempts - 1))
    return float(step * rng.uniform(0.5, 1.0))


def resolve_channel(spec: CheckSpec | None, index: int, kind: str) -> Any | None:
    """The channel config a notification was queued for, or ``None`` if it is gone or changed kind."""
    if spec is None or not 0 <= index < len(spec.alerts):
        return None
    channel = spec.alerts[index]
    return channel if channel.channel == kind else None


class Sender:
    """The outbox delivery loop (a lifecycle of the alerts service)."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        smtp: SmtpConfig,
        clock: Clock,
        config: DeliveryConfig | None = None,
        metrics: Registry = METRICS,
        rng: random.Random | None = None,
        guard: AddressGuard | None = None,
        box: Sealer | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._guard = guard or AddressGuard()
        self._smtp = smtp
        self._clock = clock
        self._config = config or DeliveryConfig()
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[uuid.UUID, tuple[asyncio.Task[None], tuple[uuid.UUID, int]]] = {}
        self._http: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """Look for due rows now (called after a transaction queued notifications)."""
        self._wake.set()

    async def start(self) -> None:
        """Open the HTTP session and start the loop."""
        self._http = guarded_session(self._guard)
        self._task = asyncio.create_task(self._run(), name="alerts-sender")

    async def stop(self) -> None:
        """Stop the loop, cancel sends in flight and hand their rows back (due now) for the next start."""
        await cancel_and_wait(self._task)
        self._task = None
        interrupted = list(self._inflight)
        for task, _ in list(self._inflight.values()):
            task.cancel()
        for task, _ in list(self._inflight.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._inflight.clear()
        if interrupted:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(Notification)
                    .where(Notification.id.in_(interrupted), Notification.status == "pending")
                    .values(next_attempt_at=self._clock())
                )
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _run(self) -> None:
        while True:
            try:
                await self._claim_and_spawn()
            except Exception:
                log.exception("outbox poll failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._config.poll_interval)

    async def _claim_and_spawn(self) -> None:
        config = self._config
        free = config.concurrency - len(self._inflight)
        if free <= 0:
            return
        now = self._clock()
        busy: dict[tuple[uuid.UUID, int], int] = {}
        for _task, destination in self._inflight.values():
            busy[destination] = busy.get(destination, 0) + 1
        due = or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now)
        async with self._sessions() as session, session.begin():
            candidates = (
                await session.execute(
                    select(Notification.id, Notification.check_id, Notification.channel_index)
                    .where(Notification.status == "pending", due)
                    .order_by(Notification.next_attempt_at, Notification.created_at)
                    .limit(free * 4)
                )
            ).all()
            claimed: list[tuple[uuid.UUID, tuple[uuid.UUID, int]]] = []
            for notification_id, check_id, index in candidates:
                destination = (check_id, index)
                if len(claimed) >= free or notification_id in self._inflight:
                    continue
                if busy.get(destination, 0) >= config.per_destination:
                    continue
                result = await session.execute(
                    update(Notification)
                    .where(Notification.id == notification_id, Notification.status == "pending", due)
                    .values(next_attempt_at=now + timedelta(seconds=config.lease))
                )
                if getattr(result, "rowcount", 0) == 1:
                    claimed.append((notification_id, destination))
                    busy[destination] = busy.get(destination, 0) + 1
        for notification_id, destination in claimed:
            task = asyncio.create_task(self._deliver(notification_id), name=f"notify-{notification_id}")
            self._inflight[notification_id] = (task, destination)
            task.add_done_callback(functools.partial(self._done, notification_id))

    def _done(self, notification_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(notification_id, None)
        self._wake.set()

    async def _deliver(self, notification_id: uuid.UUID) -> None:
        try:
            async with self._sessions() as session:
                row = await session.get(Notification, notification_id)
                if row is None or row.status != "pending":
                    return
                check = await session.get(Check, row.check_id)
            spec = CheckSpec.model_validate(check.spec) if check is not None else None
            channel = resolve_channel(spec, row.channel_index, row.channel_type)
            now = self._clock()
            if channel is None:
                result = AttemptResult(
                    ok=False, error="channel no longer configured on the check", permanent=True
                )
            else:
                result = await self._send(row, channel, now)
            await self._record(notification_id, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery crashed notification_id=%s", notification_id)
            await self._record(notification_id, AttemptResult(ok=False, error="internal error"))

    async def _send(self, row: Notification, channel: Any, now: datetime) -> AttemptResult:
        """Build and send one notification; the channel's secrets are opened only here, for this send."""
        try:
            opened = open_channel(channel, self._box) if self._box is not None else channel
            message = AlertMessage.model_validate(row.payload)
            outgoing = PROVIDERS[row.channel_type].build(message, opened, now)
        except SealError:
            return AttemptResult(
                ok=False, error="the channel's secret does not open with this deployment key", permanent=True
            )
        assert self._http is not None
        return await transmit(
            outgoing, http=self._http, smtp=self._smtp, time_limit=self._config.timeout, now=now
        )

    async def _record(self, notification_id: uuid.UUID, result: AttemptResult) -> None:
        now = self._clock()
        config = self._config
        async with self._sessions() as session, session.begin():
            row = await session.get(Notification, notification_id)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            entry: dict[str, Any] = {
                "at": now.isoformat(),
                "ok": result.ok,
                "status": result.status,
                "error": result.error,
                "duration_ms": round(result.duration_ms, 1),
            }
            outcome = "sent"
            if result.ok:
                row.status, row.sent_at, row.next_attempt_at, row.last_error = "sent", now, None, None
                self._metrics.inc(
                    "seymour_notifications_sent_total", channel=row.channel_type, event=row.transition
                )
            else:
                delay = next_delay(row.attempts, result, config, self._rng)
                deadline = row.created_at + timedelta(seconds=config.give_up_after)
                row.last_error = result.error
                if (
                    result.permanent
                    or row.attempts >= config.max_attempts
                    or now + timedelta(seconds=delay) > deadline
                ):
                    outcome = "failed"
                    row.status, row.next_attempt_at = "failed", None
                    self._metrics.inc(
                        "seymour_notifications_failed_total", channel=row.channel_type, event=row.transition
                    )
                    log.warning(
                        "notification failed check_id=%s channel=%s index=%d event=%s attempts=%d error=%s",
                        row.check_id,
                        row.channel_type,
                        row.channel_index,
                        row.transition,
                        row.attempts,
                        result.error,
                    )
                else:
                    outcome = "retry"
                    row.next_attempt_at = now + timedelta(seconds=delay)
                    entry["retry_in_s"] = round(delay, 3)
            row.attempt_log = [*row.attempt_log, entry][-ATTEMPT_LOG_MAX:]
        self._metrics.inc("seymour_notification_attempts_total", channel=row.channel_type, outcome=outcome)
