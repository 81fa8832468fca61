"""The slot ledger: every slot of every scheduled check is dealt with once — fired, or recorded as missed.

Three ways a slot used to vanish without a row, and what the ledger does about each:

- **No leader** (the database was unreachable so the leader lock was lost, or every scheduler was down):
  the leader writes the last slot it dealt with per check to ``scheduler_slots`` every second, fenced by
  its epoch. A new leader (or the same process, re-elected) reads it and records every slot after it up to
  the moment of its election as missed with reason ``no_leader``.
- **Broker unreachable**: a slot whose ``CheckDue`` cannot be published is kept in an in-memory backlog,
  in order, and published once the broker is back — as ``CheckDue`` while it is still fresh, otherwise as
  one ``RunMissed`` per region with reason ``not_published``. What the ledger writes to the database stops
  before the oldest slot still in the backlog, so a leader that dies with a backlog leaves those slots to
  its successor's gap.
- **A leader that skipped slots while leading** (its event loop stalled past the misfire grace, its lease
  lapsed for a moment): the next firing of the check sees the hole and records the slots in it as missed
  with reason ``leader_late`` — a scheduler was leading, so ``no_leader`` would send an operator looking
  for a database or scheduler outage that never happened.

A slot recorded twice (a leader killed between firing and writing its ledger) is harmless downstream:
``run_id`` is derived from check, slot and region, and the results writer keeps the first row of a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from contracts.v1 import CheckDue, CheckSpec, MissedReason, RunMissed, run_id_for, utcnow
from services.common.bus import Publisher
from services.common.db.models import Check, SchedulerLease, SchedulerSlot
from services.common.db.sessions import Sessions
from services.common.metrics import SCHEDULER_SLOTS
from services.common.tasks import cancel_and_wait
from services.scheduler.slots import slots_between

log = logging.getLogger(__name__)

FLUSH_INTERVAL: Final = 1.0
DRAIN_INTERVAL: Final = 0.5
#: Slots kept while the broker is away (~0.5 KB each); past this, new slots are left to the gap logic.
MAX_BACKLOG: Final = 200_000
#: A gap longer than this (per check) is recorded only for its most recent part, so a scheduler that was
#: down for a month does not write millions of rows on its first election.
MAX_GAP: Final = timedelta(hours=24)
#: How many backlog items are published concurrently while draining.
DRAIN_CONCURRENCY: Final = 64
_LEASE_NAME: Final = "scheduler"
_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_SKIPPED: Final = "slot skipped by the leader (its loop stalled or its lease lapsed)"
_NO_LEADER: Final = "no scheduler leader at the slot"


class Leadership(Protocol):
    """What the ledger asks before writing or publishing."""

    @property
    def epoch(self) -> int:
        """The fencing epoch of the current leadership."""
        ...

    def is_leader(self) -> bool:
        """Whether this process may fire now."""
        ...


@dataclass(frozen=True)
class Pending:
    """A slot waiting for the broker: a ``CheckDue`` to publish, or (``reason`` set) a miss to record."""

    check_id: uuid.UUID
    slot: datetime
    revision: int
    spec: CheckSpec
    reason: MissedReason | None = None
    detail: str = ""


@dataclass
class LedgerCounters:
    """What the ledger did, for logs, tests and metrics."""

    missed: int = 0
    backlogged: int = 0
    published_late: int = 0
    overflowed: int = 0
    flushes: int = 0
    fenced: int = 0
    before_gaps: int = 0


class Deposed(Exception):
    """The ledger's epoch is no longer the lease's: another scheduler leads."""


def missed_runs(item: Pending, reason: MissedReason, detail: str) -> list[RunMissed]:
    """One ``RunMissed`` per region of the slot, with the run ids the router would have given the runs."""
    return [
        RunMissed(
            run_id=run_id_for(item.check_id, item.slot, region),
            check_id=item.check_id,
            slot=item.slot,
            region=region,
            reason=reason,
            detail=detail,
        )
        for region in item.spec.regions
    ]


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SchedulerSlot)


class SlotLedger:
    """Tracks the last slot dealt with per check, keeps unpublished slots, records gaps. A Lifecycle."""

    def __init__(
        self,
        bus: Publisher,
        sessions: Sessions,
        leadership: Leadership,
        *,
        freshness: Callable[[int], float],
        scheduled: Callable[[uuid.UUID], tuple[int, CheckSpec] | None] | None = None,
        flush_interval: float = FLUSH_INTERVAL,
        drain_interval: float = DRAIN_INTERVAL,
        max_backlog: int = MAX_BACKLOG,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._leadership = leadership
        self._freshness = freshness
        self._flush_interval = flush_interval
        self._drain_interval = drain_interval
        self._max_backlog = max_backlog
        self._clock = clock
        self._handled: dict[uuid.UUID, datetime] = {}
        self._durable: dict[uuid.UUID, datetime] = {}
        self._backlog: deque[Pending] = deque()
        self._draining = asyncio.Lock()
        self._closed = False
        self._gaps_epoch: int | None = None
        self._lookup = scheduled
        self._tasks: list[asyncio.Task[None]] = []
        self.counters = LedgerCounters()

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start flushing the ledger and draining the backlog."""
        self._closed = False
        self._tasks = [
            asyncio.create_task(self._every(self._flush_interval, self.flush), name="scheduler-ledger-flush"),
            asyncio.create_task(self._every(self._drain_interval, self.drain), name="scheduler-ledger-drain"),
        ]

    async def stop(self) -> None:
        """Take no new slots, drain what the broker will take (bounded), write the ledger a last time."""
        self._closed = True
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self._leadership.is_leader():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await self.drain()
            try:
                await self.flush()
            except Exception as exc:
                log.warning("final ledger write failed error=%s", type(exc).__name__)

    async def _every(self, interval: float, step: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step()
            except Exception as exc:
                log.warning("scheduler ledger step failed step=%s error=%r", step.__name__, exc)

    # -- queries ----------------------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """How many slots (or misses) wait for the broker."""
        return len(self._backlog)

    def last_handled(self, check_id: uuid.UUID) -> datetime | None:
        """The last slot of the check this process dealt with."""
        return self._handled.get(check_id)

    # -- firing -----------------------------------------------------------------------------------------

    def claim(self, check_id: uuid.UUID, slot: datetime, revision: int, spec: CheckSpec) -> bool:
        """Take ``slot`` for firing: False if it was dealt with already (or the ledger is closed/full).

        Slots of the check between the last one dealt with and ``slot`` were skipped (a stalled loop, a
        lapsed lease) while this leadership led: they are queued as ``leader_late`` misses right here.
        """
        if self._closed or len(self._backlog) >= self._max_backlog:
            if not self._closed:
                self.counters.overflowed += 1
            return False
        if self._gaps_epoch != self._leadership.epoch:
            # A new leadership fires only once its gap is recorded: a slot claimed before would hide the
            # gap behind it. This slot falls inside the gap being recorded, so it is recorded as missed.
            self.counters.before_gaps += 1
            return False
        last = self._handled.get(check_id)
        if last is not None and slot <= last:
            return False
        if last is not None:
            skipped = slots_between(check_id, spec.interval, last, slot - _ONE_MICROSECOND)
            for missed_slot in skipped:
                self._queue_miss(check_id, missed_slot, revision, spec, "leader_late", _SKIPPED)
        self._handled[check_id] = slot
        return True

    def must_queue(self) -> bool:
        """Whether new slots go behind the backlog (keeping slot order) instead of straight to the broker."""
        return bool(self._backlog)

    def keep(self, check_id: uuid.UUID, slot: datetime, revision: int, spec: CheckSpec) -> None:
        """Keep a claimed slot whose ``CheckDue`` could not be published."""
        self._backlog.append(Pending(check_id, slot, revision, spec))
        self.counters.backlogged += 1

    def interval_changed(self, check_id: uuid.UUID) -> None:
        """A check's slot grid moved: slots of the new grid before now were never due."""
        if check_id in self._handled:
            self._handled[check_id] = max(self._handled[check_id], self._clock())

    def forget(self, check_id: uuid.UUID) -> None:
        """The check is no longer scheduled here."""
        self._handled.pop(check_id, None)
        self._durable.pop(check_id, None)

    def _queue_miss(
        self,
        check_id: uuid.UUID,
        slot: datetime,
        revision: int,
        spec: CheckSpec,
        reason: MissedReason,
        detail: str,
    ) -> None:
        self._backlog.append(Pending(check_id, slot, revision, spec, reason, detail))

    # -- a new leadership -------------------------------------------------------------------------------

    async def record_gaps(self, scheduled: Callable[[uuid.UUID], tuple[int, CheckSpec] | None]) -> int:
        """Queue every slot between each check's last dealt-with slot and now as a ``no_leader`` miss.

        Called by a new leader after it rebuilt its schedule (and again by the drain loop if that failed);
        until it has run for the current epoch, :meth:`claim` takes no slot. Returns how many slots were
        queued.
        """
        self._lookup = scheduled
        epoch = self._leadership.epoch
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(SchedulerSlot.check_id, SchedulerSlot.last_slot, Check.updated_at).join(
                        Check, Check.id == SchedulerSlot.check_id
                    )
                )
            ).all()
        cutoff = self._clock()
        queued = 0
        for check_id, last_slot, updated_at in rows:
            current = scheduled(check_id)
            if current is None:
                continue
            revision, spec = current
            start = max(last_slot, updated_at, self._handled.get(check_id, last_slot), cutoff - MAX_GAP)
            gap = slots_between(check_id, spec.interval, start, cutoff)
            if not gap:
                continue
            self._handled[check_id] = gap[-1]
            for slot in gap:
                self._queue_miss(check_id, slot, revision, spec, "no_leader", _NO_LEADER)
            queued += len(gap)
        self._gaps_epoch = epoch
        if queued:
            log.warning("recording slots fired by no leader as missed slots=%d checks=%d", queued, len(rows))
        return queued

    # -- the broker -------------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Publish the backlog in order while leading; stop at the first publish the broker refuses.

        First records this leadership's gap if that has not happened yet (the database was away then).
        """
        leading = self._leadership.is_leader()
        if leading and self._gaps_epoch != self._leadership.epoch and self._lookup is not None:
            await self.record_gaps(self._lookup)
        if not self._backlog or not leading:
            return
        async with self._draining:
            while self._backlog and self._leadership.is_leader():
                chunk = [self._backlog[i] for i in range(min(DRAIN_CONCURRENCY, len(self._backlog)))]
                sends = (self._publish(item) for item in chunk)
                results = await asyncio.gather(*sends, return_exceptions=True)
                done = 0
                for result in results:
                    if isinstance(result, BaseException):
                        break
                    done += 1
                for _ in range(done):
                    self._backlog.popleft()
                if done < len(chunk):
                    failure = results[done]
                    log.warning(
                        "backlog waits for the broker items=%d error=%s",
                        len(self._backlog),
                        type(failure).__name__,
                    )
                    return
            if not self._backlog:
                log.info("slot backlog drained")

    async def _publish(self, item: Pending) -> None:
        reason, detail = item.reason, item.detail
        if reason is None:
            late = (self._clock() - item.slot).total_seconds()
            if late <= self._freshness(item.spec.interval):
                due = CheckDue(
                    check_id=item.check_id,
                    slot=item.slot,
                    revision=item.revision,
                    spec=item.spec,
                    trigger="scheduled",
                    epoch=self._leadership.epoch,
                )
                await self._bus.publish(due, mandatory=True)
                self.counters.published_late += 1
                SCHEDULER_SLOTS.labels("fired_late").inc()
                return
            reason, detail = "not_published", f"broker unavailable for {late:.0f} s after the slot"
        for message in missed_runs(item, reason, detail):
            await self._bus.publish(message)
        self.counters.missed += 1
        SCHEDULER_SLOTS.labels(f"missed_{reason}").inc()

    # -- the database -----------------------------------------------------------------------------------

    def _safe(self) -> dict[uuid.UUID, datetime]:
        """Per check, the last slot that is really dealt with: before anything still in the backlog."""
        safe = dict(self._handled)
        for item in self._backlog:
            if item.check_id in safe and safe[item.check_id] >= item.slot:
                safe[item.check_id] = item.slot - _ONE_MICROSECOND
        return safe

    async def flush(self) -> None:
        """Write the last dealt-with slot of each changed check, only while this epoch holds the lease."""
        if not self._leadership.is_leader():
            return
        epoch = self._leadership.epoch
        changed = {
            check_id: slot for check_id, slot in self._safe().items() if self._durable.get(check_id) != slot
        }
        if not changed:
            return
        rows = [{"check_id": c, "last_slot": s, "epoch": epoch} for c, s in changed.items()]
        async with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            lease = select(SchedulerLease.epoch).where(SchedulerLease.name == _LEASE_NAME)
            if dialect == "postgresql":
                lease = lease.with_for_update()
            current = await session.scalar(lease)
            if current != epoch:
                self.counters.fenced += 1
                raise Deposed(f"lease epoch is {current}, this leader's is {epoch}")
            statement = _insert(dialect)
            statement = statement.on_conflict_do_update(
                index_elements=["check_id"],
                set_={"last_slot": statement.excluded.last_slot, "epoch": statement.excluded.epoch},
                where=SchedulerSlot.last_slot < statement.excluded.last_slot,
            )
            await session.execute(statement, rows)
        self._durable.update(changed)
        self.counters.flushes += 1
