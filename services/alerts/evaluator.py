"""Runs one policy-engine step for one check in one transaction (state + incidents + outbox), then does
what must follow the commit: confirmation runs, waking the sender, scheduling the check's next tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1 import CheckCompleted, CheckDue, CheckSpec, RunMissed
from contracts.v1.checks import AlertPolicy, MaintenanceWindow
from services.alerts import policy as engine
from services.alerts.incidents import apply_outcome, close_open_incidents
from services.alerts.outcomes import observation
from services.common.bus import Publisher
from services.common.db.incidents import effective_policy, load_global
from services.common.db.models import AlertState, Check, Runner
from services.common.db.sessions import Sessions
from services.common.logs import bind
from services.common.metrics import METRICS, Registry
from services.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: One result folded in a batch: the message, the engine's outcome, the notifications it queued.
Step = tuple[CheckCompleted | RunMissed, engine.Outcome, int]


@dataclass(frozen=True)
class EvaluatorConfig:
    """Timing knobs of evaluation."""

    grace: float = 10.0
    confirmation_wait: float = 60.0
    settings_ttl: float = 10.0
    runner_dead_after: float = 120.0


class Evaluator:
    """Applies results and ticks, one check at a time (a lock per check, a row lock on PostgreSQL)."""

    def __init__(
        self,
        sessions: Sessions,
        bus: Publisher,
        *,
        base_url: str,
        clock: Clock,
        config: EvaluatorConfig | None = None,
        on_queued: Callable[[], None] = lambda: None,
        metrics: Registry = METRICS,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._base_url = base_url
        self._clock = clock
        self._config = config or EvaluatorConfig()
        self._on_queued = on_queued
        self._metrics = metrics
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._specs: dict[uuid.UUID, tuple[int, CheckSpec]] = {}
        self._global: tuple[float, AlertPolicy | None, tuple[MaintenanceWindow, ...]] | None = None
        self._healthy: tuple[float, tuple[str, ...]] | None = None
        self.schedule: Callable[[uuid.UUID, datetime | None], None] = lambda _check, _when: None

    async def observe(self, message: CheckCompleted | RunMissed) -> None:
        """Fold one result or miss into its check's alert state."""
        await self.observe_many([message])

    async def observe_many(self, messages: Sequence[CheckCompleted | RunMissed]) -> None:
        """Fold a batch of results and misses, in order, into their checks' states: one transaction.

        A drain after an outage hands over thousands of results a second; one transaction per result
        (read the check, lock its state, write it back, commit) made six round trips each and capped
        evaluation at a few hundred per second. Here the batch costs two reads (its checks, then their
        states locked in key order) and one write per check whose state changed; each result is still
        one engine step, applied in the order the results arrived, with its incidents and outbox rows
        written in the same transaction as the state, so a crash keeps all of it or none.
        """
        by_check: dict[uuid.UUID, list[CheckCompleted | RunMissed]] = {}
        for message in messages:
            by_check.setdefault(message.check_id, []).append(message)
        ids = sorted(by_check)
        async with contextlib.AsyncExitStack() as held:
            for check_id in ids:  # in key order, so two batches never wait on each other crosswise
                await held.enter_async_context(self._lock(check_id))
            now = self._clock()
            done: list[tuple[uuid.UUID, CheckSpec, int, engine.Context, list[Step]]] = []
            async with self._sessions() as session, session.begin():
                heads = await self._load_specs(session, ids)
                rows = {
                    row.check_id: row
                    for row in (
                        await session.scalars(
                            select(AlertState)
                            .where(AlertState.check_id.in_(ids))
                            .order_by(AlertState.check_id)
                            .with_for_update()
                        )
                    ).all()
                }
                for check_id in ids:
                    enabled = heads.get(check_id)
                    if not enabled:
                        await self._forget(session, check_id, enabled is None, now, len(by_check[check_id]))
                        continue
                    revision, spec = self._specs[check_id]
                    ctx = await self._context(session, check_id, spec, now)
                    row = rows.get(check_id)
                    state = (
                        engine.EngineState.model_validate(row.state)
                        if row is not None
                        else engine.EngineState()
                    )
                    steps: list[Step] = []
                    for message in by_check[check_id]:
                        outcome = engine.observe(
                            state, observation(message, ctx.policy), ctx, now, in_place=True
                        )
                        queued = await apply_outcome(
                            session,
                            check_id=check_id,
                            spec=spec,
                            outcome=outcome,
                            base_url=self._base_url,
                            now=now,
                        )
                        steps.append((message, outcome, queued))
                        state = outcome.state
                    self._store_state(session, check_id, row, state, now)
                    done.append((check_id, spec, revision, ctx, steps))
            # The batch runs in the batcher's task: bind each result while its step's lines are written,
            # so they name the run as they did when each result had a handler task of its own.
            for check_id, _spec, _revision, ctx, steps in done:
                for message, outcome, queued in steps:
                    bind(message)
                    self._after_commit(check_id, ctx, outcome, queued, now)
            bind(None)
        for check_id, spec, revision, _ctx, steps in done:
            for message, outcome, _queued in steps:
                bind(message)
                for request in outcome.confirmations:
                    await self._confirm(check_id, spec, revision, request)
        bind(None)

    async def _load_specs(self, session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
        """Whether each check of a batch is enabled (absent: deleted), with its spec cached at its revision.

        Only checks whose cached spec is older than their revision have the spec read and validated: a
        batch over hundreds of checks otherwise decoded hundreds of spec documents that did not change.
        """
        heads = (
            await session.execute(select(Check.id, Check.enabled, Check.revision).where(Check.id.in_(ids)))
        ).all()
        stale = [
            check_id
            for check_id, enabled, revision in heads
            if enabled and (check_id not in self._specs or self._specs[check_id][0] != revision)
        ]
        if stale:
            fresh = select(Check.id, Check.revision, Check.spec).where(Check.id.in_(stale))
            for check_id, revision, raw in (await session.execute(fresh)).all():
                self._specs[check_id] = (revision, CheckSpec.model_validate(raw))
        return {check_id: bool(enabled) and check_id in self._specs for check_id, enabled, _ in heads}

    async def _forget(
        self, session: AsyncSession, check_id: uuid.UUID, deleted: bool, now: datetime, results: int
    ) -> None:
        """A deleted or disabled check: resolve its incident silently and drop its state."""
        reason = "check deleted" if deleted else "check disabled"
        await close_open_incidents(session, check_id, reason, now)
        await session.execute(delete(AlertState).where(AlertState.check_id == check_id))
        self._metrics.inc("seymour_alert_results_ignored_total", results, reason=reason.replace(" ", "_"))
        self.schedule(check_id, None)

    @staticmethod
    def _store_state(
        session: AsyncSession,
        check_id: uuid.UUID,
        row: AlertState | None,
        state: engine.EngineState,
        now: datetime,
    ) -> None:
        stored = state.model_dump(mode="json")
        if row is None:
            session.add(AlertState(check_id=check_id, state=stored, updated_at=now))
        elif stored != row.state:
            row.state = stored
            row.updated_at = now

    async def tick(self, check_id: uuid.UUID) -> None:
        """Advance a check's state in time (grace periods, confirmation deadlines, reminders, held states)."""
        await self._step(check_id, engine.tick)

    def _lock(self, check_id: uuid.UUID) -> asyncio.Lock:
        lock = self._locks.get(check_id)
        if lock is None:
            lock = self._locks[check_id] = asyncio.Lock()
        return lock

    async def _step(
        self,
        check_id: uuid.UUID,
        step: Callable[[engine.EngineState, engine.Context, datetime], engine.Outcome],
    ) -> None:
        async with self._lock(check_id):
            now = self._clock()
            async with self._sessions() as session, session.begin():
                check = await session.get(Check, check_id)
                if check is None or not check.enabled:
                    await self._forget(session, check_id, check is None, now, 1)
                    return
                spec = self._spec(check)
                ctx = await self._context(session, check_id, spec, now)
                row = await session.scalar(
                    select(AlertState).where(AlertState.check_id == check_id).with_for_update()
                )
                state = (
                    engine.EngineState.model_validate(row.state) if row is not None else engine.EngineState()
                )
                outcome = step(state, ctx, now)
                queued = await apply_outcome(
                    session, check_id=check_id, spec=spec, outcome=outcome, base_url=self._base_url, now=now
                )
                self._store_state(session, check_id, row, outcome.state, now)
                revision = check.revision
            self._after_commit(check_id, ctx, outcome, queued, now)
        for request in outcome.confirmations:
            await self._confirm(check_id, spec, revision, request)

    def _after_commit(
        self,
        check_id: uuid.UUID,
        ctx: engine.Context,
        outcome: engine.Outcome,
        queued: int,
        now: datetime,
    ) -> None:
        metrics = self._metrics
        if outcome.ignored:
            metrics.inc("seymour_alert_results_ignored_total", reason=outcome.ignored)
        for _slot, verdict in outcome.evaluated:
            metrics.inc("seymour_alert_slots_evaluated_total", verdict=verdict)
        for opened in outcome.opened:
            metrics.inc("seymour_incidents_opened_total")
            log.info(
                "incident opened check_id=%s incident_id=%s held=%s regions=%s",
                check_id,
                opened.id,
                opened.id in outcome.held,
                ",".join(sorted(opened.failing)),
            )
        for resolution in outcome.resolved:
            metrics.inc("seymour_incidents_resolved_total")
            log.info(
                "incident resolved check_id=%s incident_id=%s reason=%s",
                check_id,
                resolution.incident_id,
                resolution.reason,
            )
        if queued:
            self._on_queued()
        self.schedule(check_id, engine.wake_at(outcome.state, ctx, now))

    async def _confirm(
        self, check_id: uuid.UUID, spec: CheckSpec, revision: int, request: engine.ConfirmationRequest
    ) -> None:
        due = CheckDue(
            check_id=check_id,
            slot=request.slot,
            revision=revision,
            spec=spec,
            trigger="confirmation",
            regions=[request.region],
        )
        try:
            await self._bus.publish(due)
        except Exception:
            # the engine opens the incident at the confirmation deadline anyway
            log.exception("confirmation publish failed check_id=%s region=%s", check_id, request.region)
            return
        log.info(
            "confirmation requested check_id=%s slot=%s region=%s", check_id, request.slot, request.region
        )

    def _spec(self, check: Check) -> CheckSpec:
        cached = self._specs.get(check.id)
        if cached is not None and cached[0] == check.revision:
            return cached[1]
        spec = CheckSpec.model_validate(check.spec)
        self._specs[check.id] = (check.revision, spec)
        return spec

    async def _context(
        self, session: AsyncSession, check_id: uuid.UUID, spec: CheckSpec, now: datetime
    ) -> engine.Context:
        config = self._config
        if self._global is None or time.monotonic() - self._global[0] > config.settings_ttl:
            global_policy, global_windows = await load_global(session)
            self._global = (time.monotonic(), global_policy, global_windows)
        _, global_policy, global_windows = self._global
        policy = effective_policy(spec.alert_policy, global_policy)
        healthy: tuple[str, ...] = ()
        if policy.confirm_from_another_region:
            healthy = await self._healthy_regions(session, now)
        return engine.Context(
            check_id=check_id,
            regions=tuple(spec.regions),
            policy=policy,
            maintenance=(*spec.maintenance, *global_windows),
            timeout=spec.timeout,
            grace=config.grace,
            confirmation_wait=spec.timeout + config.confirmation_wait,
            healthy_regions=healthy,
        )

    async def _healthy_regions(self, session: AsyncSession, now: datetime) -> tuple[str, ...]:
        if self._healthy is not None and time.monotonic() - self._healthy[0] < self._config.settings_ttl:
            return self._healthy[1]
        since = now - timedelta(seconds=self._config.runner_dead_after)
        regions = await session.scalars(select(Runner.region).where(Runner.last_seen >= since).distinct())
        healthy = tuple(sorted(regions))
        self._healthy = (time.monotonic(), healthy)
        return healthy


class Ticker:
    """Wakes checks whose state can change with time alone (a lifecycle of the alerts service)."""

    def __init__(
        self,
        evaluator: Evaluator,
        sessions: Sessions,
        *,
        clock: Clock,
        max_sleep: float = 1.0,
    ) -> None:
        self._evaluator = evaluator
        self._sessions = sessions
        self._clock = clock
        self._max_sleep = max_sleep
        self._due: dict[uuid.UUID, datetime] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        evaluator.schedule = self.schedule

    def schedule(self, check_id: uuid.UUID, when: datetime | None) -> None:
        """Tick ``check_id`` at ``when`` (``None``: no tick needed)."""
        if when is None:
            self._due.pop(check_id, None)
            return
        self._due[check_id] = when
        self._wake.set()

    async def start(self) -> None:
        """Schedule every check whose stored state is not quiet, then run the loop."""
        async with self._sessions() as session:
            rows = (await session.execute(select(AlertState.check_id, AlertState.state))).all()
        now = self._clock()
        for check_id, state in rows:
            if not engine.EngineState.model_validate(state).is_quiet():
                self._due[check_id] = now
        self._task = asyncio.create_task(self._run(), name="alerts-ticker")

    async def stop(self) -> None:
        """Stop ticking (a tick in progress is cancelled; its transaction rolls back)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            now = self._clock()
            due = [check_id for check_id, when in self._due.items() if when <= now]
            for check_id in due:
                self._due.pop(check_id, None)
                try:
                    await self._evaluator.tick(check_id)
                except Exception:
                    log.exception("tick failed check_id=%s", check_id)
                    self._due[check_id] = now + timedelta(seconds=5)
            sleep = self._max_sleep
            if self._due:
                soonest = min(self._due.values())
                sleep = max(0.0, min(sleep, (soonest - self._clock()).total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=sleep)
