"""The alert policy engine, pure: (state, observation or tick, clock) → new state + what happened. No I/O.

How results become incidents:

* A **slot** is one scheduled firing of a check. Results for a slot are buffered per region until every
  region of the check has reported, or ``timeout + grace`` after the slot's first result arrived; then the
  slot is evaluated with what arrived. When a newer slot is ready, older buffered slots are evaluated first
  (in order) with what they have. Results for a slot at or before the last evaluated one are late or
  duplicates and change nothing.
* ``RunMissed`` is **no data**: the region reported, but neither failed nor passed. A slot with no data at
  all leaves every counter as it was (a broker outage opens nothing and resolves nothing).
* A slot **fails** when at least ``quorum_for(regions that reported data)`` regions failed; it **passes**
  otherwise. It is **degraded** when it passes and that many regions were slower than the soft threshold.
* An incident **opens** when the failed streak reaches ``failure_threshold`` *and* (if set) the streak has
  lasted ``failing_for`` minutes (both must hold). With ``confirm_from_another_region`` a confirmation run is
  first requested from a region that did not fail; the incident opens only if it fails too (or never
  answers: the failures were real data we could not disprove). A passing confirmation or a passing slot
  drops the streak. If every candidate region failed, the slot already confirms itself.
* It **resolves** after ``recovery_threshold`` consecutive passing slots.
* Manual runs never change alert state; confirmation runs only answer a pending confirmation.
* What channels were told is tracked apart from what is true (``announced``). While a maintenance window is
  active or the check is flapping, nothing is announced; afterwards the difference is sent (a failure
  still open, a recovery of an announced incident), so an incident that opened and resolved inside a
  window sends nothing, and one still open when the window ends is sent.
* Reminders every ``remind_every`` minutes while an announced incident stays open, at most
  ``max_reminders``. Flapping: more than ``max_transitions`` opens+resolves within ``window`` minutes;
  announced once, and it settles when at most half that many remain in the window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from contracts.v1.checks import AlertPolicy, MaintenanceWindow
from contracts.v1.failures import ReadFailure

EventKind = Literal["failure", "recovery", "reminder", "degraded", "flapping"]
RegionStatus = Literal["passed", "failed", "missed"]

INCIDENT_NAMESPACE: Final = uuid.UUID("3b0f6a0e-51c5-4f1e-8a53-0c2a4b9e7d21")
#: Slots buffered at most per check; the oldest is evaluated with what it has beyond this.
MAX_PENDING_SLOTS: Final = 20
#: How often a held state (maintenance, flapping) is looked at again to see whether it ended.
HELD_RECHECK: Final = timedelta(seconds=30)
#: Open/resolve instants kept for flapping detection at most.
MAX_TRANSITIONS_KEPT: Final = 200


class RegionOutcome(BaseModel):
    """One region's result in one slot, reduced to what alerting needs."""

    status: RegionStatus
    degraded: bool = False
    detail: ReadFailure = None


class PendingSlot(BaseModel):
    """A slot whose regions are still reporting."""

    first_seen: datetime
    regions: dict[str, RegionOutcome] = Field(default_factory=dict)


class IncidentSnapshot(BaseModel):
    """An incident as the engine knows it (the database row holds the full record)."""

    id: uuid.UUID
    opened_at: datetime
    slot: datetime
    failing: dict[str, RegionOutcome] = Field(default_factory=dict)
    note: str | None = None
    reminders_sent: int = 0
    last_notified_at: datetime | None = None
    resolved_at: datetime | None = None
    resolve_reason: str | None = None


class PendingConfirmation(BaseModel):
    """A confirmation run requested from ``region`` for ``slot``."""

    slot: datetime
    region: str
    deadline: datetime
    failing: dict[str, RegionOutcome] = Field(default_factory=dict)


class EngineState(BaseModel):
    """Everything the engine remembers about one check (stored as JSON in ``alert_state``)."""

    last_slot: datetime | None = None
    pending: dict[str, PendingSlot] = Field(default_factory=dict)
    failed_streak: int = 0
    passed_streak: int = 0
    streak_started: datetime | None = None
    incident: IncidentSnapshot | None = None
    announced: IncidentSnapshot | None = None
    confirmation: PendingConfirmation | None = None
    transitions: list[datetime] = Field(default_factory=list)
    flapping: bool = False
    flapping_since: datetime | None = None
    degraded: bool = False
    degraded_since: datetime | None = None

    def is_quiet(self) -> bool:
        """Whether nothing can change without a new result (no tick needed)."""
        return (
            not self.pending
            and self.incident is None
            and self.announced is None
            and self.confirmation is None
            and not self.flapping
        )


@dataclass(frozen=True)
class Observation:
    """One region's result (or miss) for one slot."""

    slot: datetime
    region: str
    trigger: str
    outcome: RegionOutcome


@dataclass(frozen=True)
class Context:
    """The check's configuration as the engine needs it."""

    check_id: uuid.UUID
    regions: tuple[str, ...]
    policy: AlertPolicy
    maintenance: tuple[MaintenanceWindow, ...] = ()
    timeout: float = 10.0
    grace: float = 10.0
    confirmation_wait: float = 60.0
    healthy_regions: tuple[str, ...] = ()

    def in_maintenance(self, now: datetime) -> bool:
        """Whether any maintenance window covers ``now``."""
        return any(window.contains(now) for window in self.maintenance)


@dataclass(frozen=True)
class Event:
    """Something to announce; ``key`` is unique per incident × transition (the channel index is appended)."""

    kind: EventKind
    key: str
    at: datetime
    incident: IncidentSnapshot | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    """An incident resolved."""

    incident_id: uuid.UUID
    at: datetime
    reason: str


@dataclass(frozen=True)
class ConfirmationRequest:
    """Re-run ``slot`` at once from ``region``."""

    slot: datetime
    region: str


@dataclass
class Outcome:
    """What one step did: the new state and everything the caller must persist or do."""

    state: EngineState
    opened: list[IncidentSnapshot] = field(default_factory=list)
    held: set[uuid.UUID] = field(default_factory=set)
    resolved: list[Resolution] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    confirmations: list[ConfirmationRequest] = field(default_factory=list)
    evaluated: list[tuple[datetime, str]] = field(default_factory=list)
    ignored: str | None = None


def incident_id_for(check_id: uuid.UUID, slot: datetime) -> uuid.UUID:
    """The deterministic id of the incident a check opens at ``slot`` (redelivery recomputes the same one)."""
    return uuid.uuid5(INCIDENT_NAMESPACE, f"{check_id}|{slot.isoformat()}")


def observe(
    state: EngineState, observation: Observation, ctx: Context, now: datetime, *, in_place: bool = False
) -> Outcome:
    """Fold one result into the state. Late, duplicate or manual results come back ``ignored``.

    ``state`` is left as it was unless ``in_place``: a caller folding a batch into a state it owns (read
    from the database for this batch) saves a deep copy per result; the outcomes then share that state.
    """
    out = Outcome(state=state if in_place else state.model_copy(deep=True))
    if observation.trigger == "manual":
        out.ignored = "manual"
        return out
    if observation.trigger == "confirmation":
        _confirmation_result(out, observation, ctx, now)
    else:
        slot = observation.slot
        if out.state.last_slot is not None and slot <= out.state.last_slot:
            out.ignored = "late"
            return out
        key = slot.isoformat()
        pending = out.state.pending.get(key)
        if pending is None:
            pending = out.state.pending[key] = PendingSlot(first_seen=now)
        pending.regions[observation.region] = observation.outcome
        _evaluate_ready(out, ctx, now)
    _housekeeping(out, ctx, now)
    return out


def tick(state: EngineState, ctx: Context, now: datetime) -> Outcome:
    """Advance time: slots past their grace, confirmations past their deadline, reminders, held states."""
    out = Outcome(state=state.model_copy(deep=True))
    _evaluate_ready(out, ctx, now)
    confirmation = out.state.confirmation
    if confirmation is not None and now >= confirmation.deadline:
        out.state.confirmation = None
        _open(
            out, ctx, confirmation.slot, confirmation.failing, now, "confirmation run did not answer in time"
        )
    _housekeeping(out, ctx, now)
    return out


def wake_at(state: EngineState, ctx: Context, now: datetime) -> datetime | None:
    """When :func:`tick` could next change something for this check (``None``: only a new result can)."""
    times: list[datetime] = [
        slot.first_seen + timedelta(seconds=ctx.timeout + ctx.grace) for slot in state.pending.values()
    ]
    if state.confirmation is not None:
        times.append(state.confirmation.deadline)
    incident, announced = state.incident, state.announced
    policy = ctx.policy
    if (
        incident is not None
        and announced is not None
        and announced.id == incident.id
        and policy.remind_every > 0
        and incident.reminders_sent < policy.max_reminders
        and incident.last_notified_at is not None
    ):
        times.append(incident.last_notified_at + timedelta(minutes=policy.remind_every))
    unannounced = (incident is None) != (announced is None) or (
        incident is not None and announced is not None and incident.id != announced.id
    )
    if state.flapping or unannounced:
        times.append(now + HELD_RECHECK)
    return min(times) if times else None


def _slot_deadline(slot: PendingSlot, ctx: Context) -> datetime:
    return slot.first_seen + timedelta(seconds=ctx.timeout + ctx.grace)


def _evaluate_ready(out: Outcome, ctx: Context, now: datetime) -> None:
    pending = out.state.pending
    if not pending:
        return
    ordered = sorted(pending, key=lambda key: datetime.fromisoformat(key))
    expected = set(ctx.regions)
    ready_upto = -1
    for index, key in enumerate(ordered):
        slot = pending[key]
        if expected <= set(slot.regions) or now >= _slot_deadline(slot, ctx):
            ready_upto = index
    ready_upto = max(ready_upto, len(ordered) - MAX_PENDING_SLOTS - 1)
    for key in ordered[: ready_upto + 1]:
        _evaluate_slot(out, ctx, datetime.fromisoformat(key), pending.pop(key), now)


def _evaluate_slot(out: Outcome, ctx: Context, slot: datetime, pending: PendingSlot, now: datetime) -> None:
    state, policy = out.state, ctx.policy
    state.last_slot = slot
    reporting = {region: r for region, r in pending.regions.items() if r.status != "missed"}
    if not reporting:
        out.evaluated.append((slot, "no_data"))
        return
    quorum = policy.quorum_for(len(reporting))
    failing = {region: r for region, r in reporting.items() if r.status == "failed"}
    if len(failing) >= quorum:
        out.evaluated.append((slot, "failed"))
        state.failed_streak += 1
        state.passed_streak = 0
        state.streak_started = state.streak_started or slot
        state.degraded = False
        if state.incident is None and state.confirmation is None and _threshold_met(state, policy, slot):
            _open_or_confirm(out, ctx, slot, failing, reporting, now)
        return
    degraded = [region for region, r in reporting.items() if r.status == "passed" and r.degraded]
    out.evaluated.append((slot, "degraded" if len(degraded) >= quorum else "passed"))
    state.passed_streak += 1
    state.failed_streak = 0
    state.streak_started = None
    state.confirmation = None
    resolving = state.incident is not None and state.passed_streak >= policy.recovery_threshold
    if resolving:
        _resolve(out, now, f"passed {state.passed_streak} consecutive slot(s)")
    if len(degraded) >= quorum:
        # the slot that resolves an incident announces the recovery; the next degraded one says degraded
        if not state.degraded and state.incident is None and not resolving:
            state.degraded, state.degraded_since = True, slot
            if not ctx.in_maintenance(now):
                out.events.append(
                    Event(
                        "degraded",
                        f"{ctx.check_id}:degraded:{slot.isoformat()}",
                        now,
                        detail={"regions": {r: reporting[r].model_dump(mode="json") for r in degraded}},
                    )
                )
    else:
        state.degraded = False


def _threshold_met(state: EngineState, policy: AlertPolicy, slot: datetime) -> bool:
    if state.failed_streak < policy.failure_threshold:
        return False
    if policy.failing_for and state.streak_started is not None:
        return slot - state.streak_started >= timedelta(minutes=policy.failing_for)
    return True


def _open_or_confirm(
    out: Outcome,
    ctx: Context,
    slot: datetime,
    failing: dict[str, RegionOutcome],
    reporting: dict[str, RegionOutcome],
    now: datetime,
) -> None:
    if not ctx.policy.confirm_from_another_region:
        _open(out, ctx, slot, failing, now, None)
        return
    passed_here = sorted(region for region, r in reporting.items() if r.status == "passed")
    others = sorted(region for region in (*ctx.regions, *ctx.healthy_regions) if region not in failing)
    candidates = passed_here + [region for region in others if region not in passed_here]
    if not candidates:
        _open(out, ctx, slot, failing, now, "every region failed; no other region to confirm from")
        return
    region = candidates[0]
    out.state.confirmation = PendingConfirmation(
        slot=slot, region=region, deadline=now + timedelta(seconds=ctx.confirmation_wait), failing=failing
    )
    out.confirmations.append(ConfirmationRequest(slot, region))


def _confirmation_result(out: Outcome, observation: Observation, ctx: Context, now: datetime) -> None:
    confirmation = out.state.confirmation
    if confirmation is None or observation.slot != confirmation.slot:
        out.ignored = "unexpected_confirmation"
        return
    out.state.confirmation = None
    status = observation.outcome.status
    if status == "passed":
        out.state.failed_streak = 0
        out.state.streak_started = None
        out.evaluated.append((observation.slot, "confirmation_passed"))
        return
    failing = dict(confirmation.failing)
    if status == "failed":
        failing[observation.region] = observation.outcome
        note = f"confirmed from {observation.region}"
    else:
        note = f"confirmation run from {observation.region} could not run"
    out.evaluated.append((observation.slot, f"confirmation_{status}"))
    _open(out, ctx, confirmation.slot, failing, now, note)


def _open(
    out: Outcome,
    ctx: Context,
    slot: datetime,
    failing: dict[str, RegionOutcome],
    now: datetime,
    note: str | None,
) -> None:
    state = out.state
    if state.incident is not None:
        return
    incident = IncidentSnapshot(
        id=incident_id_for(ctx.check_id, slot), opened_at=now, slot=slot, failing=failing
    )
    incident.note = note
    state.incident = incident
    state.degraded = False
    out.opened.append(incident.model_copy(deep=True))
    _transition(out, ctx, now)


def _resolve(out: Outcome, now: datetime, reason: str) -> None:
    state = out.state
    incident = state.incident
    if incident is None:
        return
    state.incident = None
    if state.announced is not None and state.announced.id == incident.id:
        state.announced.resolved_at = now
        state.announced.resolve_reason = reason
    out.resolved.append(Resolution(incident.id, now, reason))


def _transition(out: Outcome, ctx: Context, now: datetime) -> None:
    """Record an open or resolve for flapping detection; announce flapping when it starts."""
    state, flapping = out.state, ctx.policy.flapping
    state.transitions.append(now)
    horizon = now - timedelta(minutes=flapping.window)
    state.transitions = [t for t in state.transitions if t > horizon][-MAX_TRANSITIONS_KEPT:]
    if not state.flapping and len(state.transitions) > flapping.max_transitions:
        state.flapping, state.flapping_since = True, now
        if not ctx.in_maintenance(now):
            out.events.append(
                Event(
                    "flapping",
                    f"{ctx.check_id}:flapping:{now.isoformat()}",
                    now,
                    detail={"transitions": len(state.transitions), "window_minutes": flapping.window},
                )
            )


def _housekeeping(out: Outcome, ctx: Context, now: datetime) -> None:
    state = out.state
    # a resolve inside this step counts for flapping too
    for _ in out.resolved:
        _transition(out, ctx, now)
    if state.flapping:
        horizon = now - timedelta(minutes=ctx.policy.flapping.window)
        state.transitions = [t for t in state.transitions if t > horizon]
        if len(state.transitions) <= ctx.policy.flapping.max_transitions // 2:
            state.flapping, state.flapping_since = False, None
    if not state.flapping and not ctx.in_maintenance(now):
        _reconcile(out, ctx, now)
    for opened in out.opened:
        if state.announced is None or state.announced.id != opened.id:
            out.held.add(opened.id)


def _reconcile(out: Outcome, ctx: Context, now: datetime) -> None:
    """Tell channels the difference between what they were told and what is true."""
    state, policy = out.state, ctx.policy
    announced, incident = state.announced, state.incident
    if announced is not None and (incident is None or incident.id != announced.id):
        if announced.resolved_at is None:
            announced.resolved_at, announced.resolve_reason = now, "superseded"
        out.events.append(Event("recovery", f"{announced.id}:recovery", now, incident=announced))
        state.announced = announced = None
    if incident is None:
        return
    if announced is None:
        incident.last_notified_at = now
        state.announced = incident.model_copy(deep=True)
        out.events.append(
            Event("failure", f"{incident.id}:failure", now, incident=incident.model_copy(deep=True))
        )
        return
    if (
        policy.remind_every > 0
        and incident.reminders_sent < policy.max_reminders
        and incident.last_notified_at is not None
        and now >= incident.last_notified_at + timedelta(minutes=policy.remind_every)
    ):
        incident.reminders_sent += 1
        incident.last_notified_at = now
        out.events.append(
            Event(
                "reminder",
                f"{incident.id}:reminder:{incident.reminders_sent}",
                now,
                incident=incident.model_copy(deep=True),
                detail={"reminder": incident.reminders_sent, "max_reminders": policy.max_reminders},
            )
        )
