"""The schedule: one APScheduler job per enabled check, firing ``CheckDue`` for each slot while leading.

Every process (leader or standby) keeps the same jobs, rebuilt from the ``checks`` table at start, when it
becomes leader and every ``RESYNC_INTERVAL`` seconds, and kept current by ``CheckChanged`` at once. Only the
leader publishes; a standby's jobs run as no-ops, so on takeover it fires the very next slots without
replaying anything.

Missed firings are not made up: a slot whose firing comes later than its misfire grace
(``min(interval, 30 s)``) is not fired late. It is not forgotten either: the :class:`SlotLedger` records it
as missed (``leader_late``), and every slot that passed while no scheduler was leading (``no_leader``), and
keeps slots the broker would not take until it does (``CheckDue`` while fresh, else missed with
``not_published``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import ValidationError
from sqlalchemy import select

from contracts.topology import ROUTER_DUE
from contracts.v1 import CheckChanged, CheckDue, CheckSpec
from services.common.bus import Bus
from services.common.db.models import Check
from services.common.db.sessions import Sessions
from services.common.logs import bind as bind_log_subject
from services.common.metrics import SCHEDULER_SLOTS
from services.common.tasks import cancel_and_wait
from services.scheduler.jobs import SlotExecutor, SlotTrigger
from services.scheduler.ledger import SlotLedger
from services.scheduler.outbox import DueOutbox

log = logging.getLogger(__name__)
#: APScheduler logs every job added or removed at INFO: 10k lines per start at 10k checks. Our own logs
#: say what matters (changes at INFO, reconcile summaries), so its logger is kept at WARNING.
_apscheduler_log = logging.getLogger(f"{__name__}.apscheduler")
_apscheduler_log.setLevel(logging.WARNING)

#: How often the schedule is compared with the ``checks`` table (a cheap id/revision scan), in case a
#: ``CheckChanged`` was lost, e.g. while the broker connection was down.
RESYNC_INTERVAL: Final = 30.0
MAX_MISFIRE_GRACE: Final = 30
MAX_PUBLISH_TIMEOUT: Final = 10.0
_SPEC_CHUNK: Final = 500


def misfire_grace(interval: int) -> int:
    """How late (s) a slot may still be fired: ``min(interval, 30)``."""
    return min(interval, MAX_MISFIRE_GRACE)


def publish_timeout(interval: int) -> float:
    """How long one slot's publish may take before it is given up (it must not hold up the next slot)."""
    return float(min(interval, MAX_PUBLISH_TIMEOUT))


class Leadership(Protocol):
    """What the schedule asks before each firing."""

    @property
    def epoch(self) -> int:
        """The fencing epoch to stamp on ``CheckDue``."""
        ...

    def is_leader(self) -> bool:
        """Whether this process may fire now."""
        ...


@dataclass(frozen=True)
class Scheduled:
    """A check as currently scheduled (``spec_bytes``: its spec's JSON size, which bounds a batch)."""

    revision: int
    spec: CheckSpec
    spec_bytes: int = field(default=0, compare=False)


@dataclass
class Counters:
    """What the schedule did, for logs, tests and metrics."""

    fired: int = 0
    standby_skips: int = 0
    publish_failures: int = 0


class CheckSchedule:
    """The APScheduler jobs of every enabled check. A :class:`Lifecycle`."""

    def __init__(
        self,
        bus: Bus,
        sessions: Sessions,
        leadership: Leadership,
        *,
        resync_interval: float = RESYNC_INTERVAL,
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._leadership = leadership
        self._resync_interval = resync_interval
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            logger=_apscheduler_log,
            executors={"default": SlotExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._scheduled: dict[uuid.UUID, Scheduled] = {}
        self._revisions: dict[uuid.UUID, int] = {}
        self._deleted: dict[uuid.UUID, int] = {}
        self._changed_during_reconcile: set[uuid.UUID] | None = None
        self._reconcile_lock = asyncio.Lock()
        self._resync_task: asyncio.Task[None] | None = None
        self.counters = Counters()
        self.ledger = SlotLedger(bus, sessions, leadership, freshness=misfire_grace, scheduled=self._current)
        self.outbox = DueOutbox(bus)

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Declare the router's queue (slots wait there while the router restarts), load checks, run."""
        await self._bus.declare_queue(ROUTER_DUE)
        self._scheduler.start()
        await self.reconcile()
        await self.ledger.start()
        self._resync_task = asyncio.create_task(self._resync(), name="scheduler-resync")

    async def stop(self) -> None:
        """Stop resyncing and firing; publish what the outbox holds and hand over what the ledger holds
        (see :meth:`SlotLedger.stop`)."""
        await self.outbox.close()
        await self.ledger.stop()
        await cancel_and_wait(self._resync_task)
        self._resync_task = None
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a callback on the loop: let it run

    async def on_elected(self, epoch: int) -> None:
        """A new leadership starts from the database's view of the checks."""
        log.info("rebuilding schedule for new leadership epoch=%d", epoch)
        await self.reconcile()
        await self.ledger.record_gaps(self._current)
        await self.ledger.drain()

    def _current(self, check_id: uuid.UUID) -> tuple[int, CheckSpec] | None:
        scheduled = self._scheduled.get(check_id)
        return None if scheduled is None else (scheduled.revision, scheduled.spec)

    # -- queries ----------------------------------------------------------------------------------------

    def scheduled(self, check_id: uuid.UUID) -> Scheduled | None:
        """The check as scheduled now, or ``None`` if it is not (disabled, deleted, unknown)."""
        return self._scheduled.get(check_id)

    def known_revision(self, check_id: uuid.UUID) -> int | None:
        """The newest revision of the check this process has seen (deleted and disabled ones too)."""
        return self._revisions.get(check_id)

    def next_slot(self, check_id: uuid.UUID) -> datetime | None:
        """When the check's job fires next, or ``None`` if it has no job."""
        job = self._scheduler.get_job(str(check_id))
        return None if job is None else job.next_run_time

    def __len__(self) -> int:
        return len(self._scheduled)

    # -- changes ----------------------------------------------------------------------------------------

    def apply_change(self, message: CheckChanged) -> None:
        """Follow a ``CheckChanged`` at once. Stale revisions are ignored; deletion is final."""
        check_id = message.check_id
        if self._changed_during_reconcile is not None:
            self._changed_during_reconcile.add(check_id)
        if message.change == "deleted":
            self._deleted[check_id] = max(message.revision, self._deleted.get(check_id, 0))
            self._revisions[check_id] = max(message.revision, self._revisions.get(check_id, 0))
            self._unschedule(check_id)
            log.info("check deleted check_id=%s revision=%d", check_id, message.revision)
            return
        if message.revision <= self._deleted.get(check_id, -1):
            log.info("ignoring change of a deleted check check_id=%s revision=%d", check_id, message.revision)
            return
        if message.revision < self._revisions.get(check_id, -1):
            log.info(
                "ignoring stale change check_id=%s revision=%d known=%d",
                check_id,
                message.revision,
                self._revisions[check_id],
            )
            return
        if message.spec is None:
            log.warning("change without a spec check_id=%s change=%s", check_id, message.change)
            return
        self._put(check_id, message.revision, message.spec if message.spec.enabled else None)
        log.info(
            "check changed check_id=%s change=%s revision=%d enabled=%s interval=%d",
            check_id,
            message.change,
            message.revision,
            message.spec.enabled,
            message.spec.interval,
        )

    def _put(self, check_id: uuid.UUID, revision: int, spec: CheckSpec | None) -> None:
        """Schedule ``spec`` as the check's revision, or unschedule the check when ``spec`` is None."""
        self._revisions[check_id] = revision
        if spec is None:
            if self._unschedule(check_id):
                log.info("check disabled check_id=%s revision=%d", check_id, revision)
            return
        previous = self._scheduled.get(check_id)
        self._scheduled[check_id] = Scheduled(revision, spec, len(spec.model_dump_json()))
        job_id = str(check_id)
        same_interval = previous is not None and previous.spec.interval == spec.interval
        if same_interval and self._scheduler.get_job(job_id) is not None:
            return
        if previous is not None and not same_interval:
            self.ledger.interval_changed(check_id)
        self._scheduler.add_job(
            self._fire,
            trigger=SlotTrigger(check_id, spec.interval),
            args=(check_id,),
            kwargs={"slot": None},
            id=job_id,
            name=f"check {check_id}",
            replace_existing=True,
            misfire_grace_time=misfire_grace(spec.interval),
            coalesce=True,
            max_instances=1,
        )
        log.debug("check scheduled check_id=%s revision=%d interval=%d", check_id, revision, spec.interval)

    def _unschedule(self, check_id: uuid.UUID) -> bool:
        existed = self._scheduled.pop(check_id, None) is not None
        self.ledger.forget(check_id)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(str(check_id))
        return existed

    # -- the database -----------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Bring the schedule in line with the ``checks`` table.

        Reads ids, revisions and enabled flags, then the specs of only the checks whose revision is new.
        A ``CheckChanged`` that arrives during the read wins over the row read for that check.
        """
        async with self._reconcile_lock:
            self._changed_during_reconcile = set()
            try:
                await self._reconcile()
            finally:
                self._changed_during_reconcile = None

    async def _reconcile(self) -> None:
        async with self._sessions() as session:
            rows = (await session.execute(select(Check.id, Check.revision, Check.enabled))).all()
            touched = self._changed_during_reconcile or set()
            in_db: set[uuid.UUID] = set()
            to_load: list[uuid.UUID] = []
            for check_id, revision, enabled in rows:
                in_db.add(check_id)
                known = self._revisions.get(check_id)
                if check_id in touched or (known is not None and revision < known):
                    continue
                if known == revision:
                    if not enabled:
                        self._put(check_id, revision, None)
                    continue
                to_load.append(check_id)
            for start in range(0, len(to_load), _SPEC_CHUNK):
                chunk = to_load[start : start + _SPEC_CHUNK]
                query = select(Check.id, Check.revision, Check.enabled, Check.spec).where(Check.id.in_(chunk))
                for check_id, revision, enabled, raw_spec in (await session.execute(query)).all():
                    self._load_row(check_id, revision, enabled, raw_spec)
        for check_id in list(self._scheduled):
            if check_id not in in_db and check_id not in touched:
                self._unschedule(check_id)
                log.info("check gone from the database check_id=%s", check_id)
        log.info("schedule reconciled checks=%d scheduled=%d loaded=%d", len(in_db), len(self), len(to_load))

    def _load_row(self, check_id: uuid.UUID, revision: int, enabled: bool, raw_spec: Any) -> None:
        touched = self._changed_during_reconcile or set()
        if check_id in touched or revision <= self._deleted.get(check_id, -1):
            return
        try:
            spec = CheckSpec.model_validate(raw_spec)
        except ValidationError as exc:
            log.error("check has an invalid spec check_id=%s errors=%d", check_id, exc.error_count())
            self._put(check_id, revision, None)
            return
        self._put(check_id, revision, spec if enabled and spec.enabled else None)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self._resync_interval)
            try:
                await self.reconcile()
            except Exception:
                log.exception("schedule resync failed")

    # -- firing -----------------------------------------------------------------------------------------

    async def _fire(self, check_id: uuid.UUID, slot: datetime | None) -> None:
        """Publish ``CheckDue`` for ``slot`` if this process leads (checked right before every firing),
        through the outbox, which batches it with the slots due within milliseconds of it.

        A slot the broker does not confirm in time is kept by the ledger and published (or recorded as
        missed) once the broker is back; while such slots wait, new ones queue behind them.
        """
        if not self._leadership.is_leader():
            self.counters.standby_skips += 1
            return
        scheduled = self._scheduled.get(check_id)
        if scheduled is None or slot is None:
            return
        if not self.ledger.claim(check_id, slot, scheduled.revision, scheduled.spec):
            return
        if self.ledger.must_queue():
            self.ledger.keep(check_id, slot, scheduled.revision, scheduled.spec)
            return
        message = CheckDue(
            check_id=check_id,
            slot=slot,
            revision=scheduled.revision,
            spec=scheduled.spec,
            trigger="scheduled",
            epoch=self._leadership.epoch,
        )
        bind_log_subject(message)  # this firing task's log lines are about this slot
        try:
            async with asyncio.timeout(publish_timeout(scheduled.spec.interval)):
                await self.outbox.send(message, scheduled.spec_bytes)
        except Exception as exc:
            self.counters.publish_failures += 1
            self.ledger.keep(check_id, slot, scheduled.revision, scheduled.spec)
            log.warning(
                "slot kept until the broker takes it check_id=%s slot=%s error=%s",
                check_id,
                slot.isoformat(),
                type(exc).__name__,
            )
            return
        self.counters.fired += 1
        SCHEDULER_SLOTS.labels("fired").inc()
        log.debug("slot fired check_id=%s slot=%s epoch=%d", check_id, slot.isoformat(), message.epoch)
