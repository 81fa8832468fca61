"""Table-driven tests of the pure policy engine over synthetic result sequences."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.v1 import AssertionFailure
from contracts.v1.checks import AlertPolicy, MaintenanceWindow
from services.alerts import policy as engine

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday
REGIONS = ("ap-south-1", "eu-west-1", "us-east-1")
CHECK = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
STATUS = {"F": "failed", "P": "passed", "M": "missed", "D": "passed"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Run:
    """Feeds steps to the engine and keeps what it emitted."""

    ctx: engine.Context
    state: engine.EngineState = field(default_factory=engine.EngineState)
    events: list[str] = field(default_factory=list)
    opened: list[engine.IncidentSnapshot] = field(default_factory=list)
    held: set[uuid.UUID] = field(default_factory=set)
    confirmations: list[engine.ConfirmationRequest] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def take(self, out: engine.Outcome) -> None:
        self.state = out.state
        self.events += [e.kind for e in out.events]
        self.keys += [e.key for e in out.events]
        self.opened += out.opened
        self.held |= out.held
        self.confirmations += out.confirmations
        if out.ignored:
            self.ignored.append(out.ignored)

    def result(self, slot: int, region: str, code: str, now: datetime, trigger: str = "scheduled") -> None:
        detail = (
            {
                "kind": "assertion",
                "source": "status_code",
                "comparison": "equals",
                "target": 200,
                "observed": 503,
            }
            if code == "F"
            else None
        )
        outcome = engine.RegionOutcome(status=STATUS[code], degraded=code == "D", detail=detail)
        obs = engine.Observation(slot=at(slot), region=region, trigger=trigger, outcome=outcome)
        self.take(engine.observe(self.state, obs, self.ctx, now))

    def step(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "tick":
            self.take(engine.tick(self.state, self.ctx, at(step[1])))
        elif kind == "confirm":
            _, slot, region, code, minute = step
            self.result(slot, region, code, at(minute), trigger="confirmation")
        elif kind == "manual":
            _, slot, code = step
            self.result(slot, REGIONS[0], code, at(slot) + timedelta(seconds=2), trigger="manual")
        else:
            slot, codes = step
            now = at(slot) + timedelta(seconds=2)
            for region, code in zip(REGIONS, codes, strict=True):
                if code != "-":
                    self.result(slot, region, code, now)


def context(**overrides: Any) -> engine.Context:
    windows = overrides.pop("maintenance", ())
    healthy = overrides.pop("healthy", ())
    return engine.Context(
        check_id=CHECK,
        regions=REGIONS,
        policy=AlertPolicy(**overrides),
        maintenance=tuple(windows),
        timeout=10.0,
        grace=10.0,
        confirmation_wait=60.0,
        healthy_regions=tuple(healthy),
    )


def slots(start: int, codes: str, count: int) -> list[tuple[int, str]]:
    return [(start + i, codes) for i in range(count)]


def window(start_min: float, end_min: float) -> MaintenanceWindow:
    return MaintenanceWindow(start=at(start_min), end=at(end_min))


CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]], list[str]]] = [
    ("threshold-default-2", {}, slots(0, "FFF", 10), ["failure"]),
    ("threshold-3-needs-3", {"failure_threshold": 3}, slots(0, "FFF", 2), []),
    ("threshold-3-opens-on-3rd", {"failure_threshold": 3}, slots(0, "FFF", 3), ["failure"]),
    ("single-blip-no-alert", {}, [(0, "FFF"), (1, "PPP"), (2, "FFF"), (3, "PPP")], []),
    ("recovery-default-1", {}, [*slots(0, "FFF", 2), (2, "PPP"), (3, "PPP")], ["failure", "recovery"]),
    (
        "recovery-threshold-3",
        {"recovery_threshold": 3},
        [*slots(0, "FFF", 2), *slots(2, "PPP", 2)],
        ["failure"],
    ),
    (
        "recovery-threshold-3-resolves",
        {"recovery_threshold": 3},
        [*slots(0, "FFF", 2), *slots(2, "PPP", 3)],
        ["failure", "recovery"],
    ),
    (
        "recovery-streak-broken-by-failure",
        {"recovery_threshold": 2},
        [*slots(0, "FFF", 2), (2, "PPP"), (3, "FFF"), (4, "PPP"), (5, "PPP")],
        ["failure", "recovery"],
    ),
    ("quorum-1-any-region", {}, slots(0, "FPP", 2), ["failure"]),
    ("quorum-2-one-region-quiet", {"region_quorum": 2}, slots(0, "FPP", 10), []),
    ("quorum-2-two-regions-alert", {"region_quorum": 2}, slots(0, "FFP", 2), ["failure"]),
    ("quorum-100pct-two-of-three-quiet", {"region_quorum": "100%"}, slots(0, "FFP", 10), []),
    ("quorum-100pct-all-alert", {"region_quorum": "100%"}, slots(0, "FFF", 2), ["failure"]),
    ("quorum-50pct-two-of-three", {"region_quorum": "50%"}, slots(0, "FFP", 2), ["failure"]),
    ("missed-only-never-opens", {}, slots(0, "MMM", 10), []),
    ("missed-never-resolves", {}, [*slots(0, "FFF", 2), *slots(2, "MMM", 10)], ["failure"]),
    ("missed-keeps-streak", {}, [(0, "FFF"), (1, "MMM"), (2, "FFF")], ["failure"]),
    ("missed-reduces-quorum-base", {"region_quorum": 2}, slots(0, "FMM", 2), ["failure"]),
    ("duration-not-yet", {"failure_threshold": 1, "failing_for": 3}, slots(0, "FFF", 3), []),
    ("duration-reached", {"failure_threshold": 1, "failing_for": 3}, slots(0, "FFF", 4), ["failure"]),
    (
        "duration-reset-by-pass",
        {"failure_threshold": 1, "failing_for": 3},
        [*slots(0, "FFF", 3), (3, "PPP"), *slots(4, "FFF", 3)],
        [],
    ),
    ("threshold-and-duration-both", {"failure_threshold": 5, "failing_for": 1}, slots(0, "FFF", 4), []),
    (
        "threshold-and-duration-5th",
        {"failure_threshold": 5, "failing_for": 1},
        slots(0, "FFF", 5),
        ["failure"],
    ),
    (
        "out-of-order-late-slot-ignored",
        {},
        [(0, "F--"), (1, "FFF"), (0, "-FF"), (2, "PPP")],
        ["failure", "recovery"],
    ),
    ("duplicates-count-once", {"failure_threshold": 3}, [(0, "FFF"), (0, "FFF"), (1, "FFF"), (1, "FFF")], []),
    ("duplicate-in-pending-slot", {}, [(0, "F--"), (0, "F--"), (0, "-FF"), (1, "FFF")], ["failure"]),
    ("grace-evaluates-partial-slots", {}, [(0, "F--"), (1, "F--"), ("tick", 1.5)], ["failure"]),
    ("grace-not-reached", {}, [(0, "F--"), (1, "F--"), ("tick", 1.2)], []),
    ("manual-runs-ignored", {"failure_threshold": 1}, [("manual", 0, "F"), ("manual", 1, "F")], []),
    (
        "maintenance-holds-then-sends",
        {"maintenance": [window(-1, 5.5)]},
        [*slots(0, "FFF", 5), ("tick", 5.6), *slots(6, "FFF", 3)],
        ["failure"],
    ),
    (
        "maintenance-open-and-resolve-inside-silent",
        {"maintenance": [window(-1, 10)]},
        [*slots(0, "FFF", 3), *slots(3, "PPP", 3), ("tick", 11), *slots(11, "PPP", 2)],
        [],
    ),
    (
        "maintenance-recovery-held-until-end",
        {"maintenance": [window(2.5, 10)]},
        [*slots(0, "FFF", 2), *slots(2, "FFF", 2), *slots(4, "PPP", 2), ("tick", 9), ("tick", 10.5)],
        ["failure", "recovery"],
    ),
    ("reminders-off-by-default", {}, slots(0, "FFF", 30), ["failure"]),
    (
        "reminders-every-5-max-2",
        {"remind_every": 5, "max_reminders": 2},
        slots(0, "FFF", 30),
        ["failure", "reminder", "reminder"],
    ),
    (
        "reminders-by-tick",
        {"remind_every": 5, "max_reminders": 3},
        [*slots(0, "FFF", 2), ("tick", 3), ("tick", 6.1), ("tick", 7), ("tick", 11.2)],
        ["failure", "reminder", "reminder"],
    ),
    (
        "reminders-held-in-maintenance",
        {"remind_every": 5, "max_reminders": 5, "maintenance": [window(3, 20)]},
        slots(0, "FFF", 18),
        ["failure"],
    ),
    (
        "flapping-notified-once-then-settles",
        {"flapping": {"max_transitions": 3, "window": 30}},
        [*[(i, "FFF" if i % 3 != 2 else "PPP") for i in range(15)], *slots(15, "PPP", 40)],
        ["failure", "recovery", "failure", "flapping", "recovery"],
    ),
    (
        "flapping-settles-while-failing-sends-failure",
        {"flapping": {"max_transitions": 3, "window": 10}},
        [*[(i, "FFF" if i % 3 != 2 else "PPP") for i in range(12)], *slots(12, "FFF", 20)],
        ["failure", "recovery", "failure", "flapping", "recovery", "failure"],
    ),
    (
        "degraded-once-per-episode",
        {},
        [(0, "DDD"), (1, "DDD"), (2, "PPP"), (3, "DPP")],
        ["degraded", "degraded"],
    ),
    ("degraded-needs-quorum", {"region_quorum": 2}, [(0, "DPP"), (1, "DDP")], ["degraded"]),
    (
        "degraded-not-during-incident",
        {"recovery_threshold": 3},
        [*slots(0, "FFF", 2), *slots(2, "DDD", 2)],
        ["failure"],
    ),
    (
        "degraded-after-recovery",
        {},
        [*slots(0, "FFF", 2), *slots(2, "DDD", 2)],
        ["failure", "recovery", "degraded"],
    ),
    (
        "combined-threshold-quorum-duration-reminders",
        {
            "failure_threshold": 3,
            "region_quorum": 2,
            "failing_for": 3,
            "remind_every": 10,
            "max_reminders": 1,
        },
        [*slots(0, "FPP", 5), *slots(5, "FFP", 3), *slots(8, "FFM", 25), *slots(33, "PPP", 1)],
        ["failure", "reminder", "recovery"],
    ),
]


@pytest.mark.parametrize(("policy", "steps", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_policy_sequences(policy: dict[str, Any], steps: list[tuple[Any, ...]], expected: list[str]) -> None:
    run = Run(context(**policy))
    for step in steps:
        run.step(step)
    assert run.events == expected
    assert len(run.keys) == len(set(run.keys)), "every event has its own idempotency key"


def test_late_and_duplicate_results_are_reported_ignored() -> None:
    run = Run(context())
    for step in [(0, "FFF"), (1, "FFF"), (0, "FFF"), ("manual", 2, "F")]:
        run.step(step)
    assert run.ignored == ["late", "late", "late", "manual"]


def test_maintenance_incident_is_recorded_held_then_sent() -> None:
    run = Run(context(maintenance=[window(-1, 5.5)]))
    for step in slots(0, "FFF", 3):
        run.step(step)
    assert len(run.opened) == 1
    assert run.opened[0].id in run.held
    assert run.events == []
    run.step(("tick", 6))
    assert run.events == ["failure"]
    assert run.keys == [f"{run.opened[0].id}:failure"]


def test_incident_snapshot_records_failing_regions_and_assertions() -> None:
    run = Run(context())
    for step in [(0, "FPF"), (1, "FPF")]:
        run.step(step)
    (incident,) = run.opened
    assert sorted(incident.failing) == ["ap-south-1", "us-east-1"]
    assert incident.failing["us-east-1"].detail == AssertionFailure(
        source="status_code", comparison="equals", target=200, observed=503
    )
    assert incident.id == engine.incident_id_for(CHECK, at(1))


CONFIRM_CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]], list[str], list[str]]] = [
    (
        "confirmation-passes-no-incident",
        {},
        [*slots(0, "PPF", 2), ("confirm", 1, "ap-south-1", "P", 1.2)],
        ["ap-south-1"],
        [],
    ),
    (
        "confirmation-fails-opens",
        {},
        [*slots(0, "PPF", 2), ("confirm", 1, "ap-south-1", "F", 1.2)],
        ["ap-south-1"],
        ["failure"],
    ),
    (
        "confirmation-missed-opens",
        {},
        [*slots(0, "PPF", 2), ("confirm", 1, "ap-south-1", "M", 1.2)],
        ["ap-south-1"],
        ["failure"],
    ),
    (
        "confirmation-timeout-opens",
        {},
        [*slots(0, "PPF", 2), ("tick", 1.5), ("tick", 2.2)],
        ["ap-south-1"],
        ["failure"],
    ),
    (
        "confirmation-passing-slot-cancels",
        {},
        [*slots(0, "PPF", 2), (2, "PPP"), ("tick", 5)],
        ["ap-south-1"],
        [],
    ),
    (
        "confirmation-wrong-slot-ignored",
        {},
        [*slots(0, "PPF", 2), ("confirm", 0, "ap-south-1", "F", 1.2)],
        ["ap-south-1"],
        [],
    ),
    ("confirmation-all-failed-opens-directly", {}, slots(0, "FFF", 2), [], ["failure"]),
    (
        "confirmation-all-failed-uses-healthy-region",
        {"healthy": ["eu-north-1"]},
        [*slots(0, "FFF", 2), ("confirm", 1, "eu-north-1", "P", 1.2)],
        ["eu-north-1"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("extra", "steps", "confirm_regions", "expected"),
    [c[1:] for c in CONFIRM_CASES],
    ids=[c[0] for c in CONFIRM_CASES],
)
def test_confirmation(
    extra: dict[str, Any], steps: list[tuple[Any, ...]], confirm_regions: list[str], expected: list[str]
) -> None:
    run = Run(context(confirm_from_another_region=True, **extra))
    for step in steps:
        run.step(step)
    assert [c.region for c in run.confirmations] == confirm_regions
    assert run.events == expected


def test_wake_at_covers_grace_confirmation_and_reminders() -> None:
    ctx = context(remind_every=5, confirm_from_another_region=True)
    run = Run(ctx)
    run.step((0, "F--"))
    assert engine.wake_at(run.state, ctx, at(0)) == at(0) + timedelta(seconds=2 + 20)
    run.step(("tick", 1))
    run.step((1, "PPF"))
    assert run.state.confirmation is not None
    assert engine.wake_at(run.state, ctx, at(1)) == run.state.confirmation.deadline
    run.step(("confirm", 1, "ap-south-1", "F", 1.1))
    assert run.events == ["failure"]
    assert engine.wake_at(run.state, ctx, at(1.2)) == at(1.1) + timedelta(minutes=5)


def test_state_round_trips_through_json() -> None:
    run = Run(context(remind_every=5))
    for step in [*slots(0, "FFF", 3), (3, "F--")]:
        run.step(step)
    restored = engine.EngineState.model_validate(run.state.model_dump(mode="json"))
    assert restored == run.state
