"""Contracts: schema snapshots match the models, messages survive the wire, configs are validated."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.snapshots import MODELS, render, snapshot_path
from contracts.topology import EXCHANGE_OF, ROUTING_KEYS
from contracts.v1 import (
    MESSAGE_TYPES,
    AlertPolicy,
    CheckCompleted,
    CheckDue,
    CheckDueBatch,
    CheckSpec,
    MaintenanceWindow,
    RunError,
    RunMissed,
    RunMissedBatch,
    decode,
    encode,
    run_id_for,
    utcnow,
)


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_schema_snapshot_has_not_drifted(model: Any) -> None:
    path = snapshot_path(model)
    assert path.exists(), f"missing snapshot {path.name}: run python -m contracts.snapshots --write"
    assert path.read_text(encoding="utf-8") == render(model), (
        f"{model.__name__} changed on the wire. Within v1 only add optional fields; then renew the "
        "snapshot with python -m contracts.snapshots --write"
    )


def test_every_message_kind_has_an_address() -> None:
    for model in MESSAGE_TYPES:
        kind = model.model_fields["kind"].default
        assert kind in EXCHANGE_OF
        assert kind in ROUTING_KEYS or kind == "run.check"


SPEC = CheckSpec.model_validate(
    {"name": "x", "request": {"url": "https://example.com/"}, "regions": ["eu-north-1"]}
)


def test_round_trip_keeps_types_and_aliases() -> None:
    now = utcnow()
    done = CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=now,
        region="eu-north-1",
        status="error",
        started_at=now,
        completed_at=now,
        error=RunError(**{"class": "timeout", "message": "10 s"}),
    )
    wire = encode(done)
    assert b'"class":"timeout"' in wire
    assert decode(wire) == done
    due = CheckDue(check_id=uuid.uuid4(), slot=now, revision=3, spec=SPEC)
    assert decode(encode(due)) == due
    batch = CheckDueBatch(items=[due, due.model_copy(update={"trigger": "manual", "regions": ["x"]})])
    assert decode(encode(batch)) == batch
    shed = RunMissed(
        run_id=uuid.uuid4(), check_id=due.check_id, slot=now, region="x", reason="overloaded", detail="shed"
    )
    missed_batch = RunMissedBatch(items=[shed, shed.model_copy(update={"run_id": uuid.uuid4()})])
    assert decode(encode(missed_batch)) == missed_batch


def test_unknown_fields_from_newer_v1_producers_are_ignored() -> None:
    due = CheckDue(check_id=uuid.uuid4(), slot=utcnow(), revision=1, spec=SPEC)
    data = encode(due).replace(b'"kind"', b'"added_later":1,"kind"')
    assert decode(data) == due


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        decode(
            encode(CheckDue(check_id=uuid.uuid4(), slot=utcnow(), revision=1, spec=SPEC))
            .replace(b'+00:00"', b'"', 1)
            .replace(b'Z"', b'"', 1)
        )


def test_run_ids_are_deterministic_per_check_slot_region_and_trigger() -> None:
    check, slot = uuid.uuid4(), utcnow()
    assert run_id_for(check, slot, "a") == run_id_for(check, slot, "a")
    assert (
        len(
            {
                run_id_for(check, slot, "a"),
                run_id_for(check, slot, "b"),
                run_id_for(check, slot, "a", "manual"),
            }
        )
        == 3
    )


@pytest.mark.parametrize(
    ("quorum", "regions", "expected"),
    [(1, 3, 1), (2, 3, 2), (5, 3, 3), ("50%", 3, 2), ("100%", 4, 4), ("34%", 3, 2), ("1%", 12, 1)],
    ids=["one", "two", "capped", "half-of-3", "all", "a-third-rounds-up", "tiny"],
)
def test_region_quorum(quorum: Any, regions: int, expected: int) -> None:
    assert AlertPolicy(region_quorum=quorum).quorum_for(regions) == expected


@pytest.mark.parametrize(
    ("window", "instant", "inside"),
    [
        ({"start": "2026-12-01T02:00:00Z", "end": "2026-12-01T03:00:00Z"}, "2026-12-01T02:30:00Z", True),
        ({"start": "2026-12-01T02:00:00Z", "end": "2026-12-01T03:00:00Z"}, "2026-12-01T03:00:00Z", False),
        (
            {"weekly": {"day": "sun", "start": "02:00", "end": "03:00", "tz": "Europe/Stockholm"}},
            "2026-11-29T01:30:00Z",
            True,
        ),
        (
            {"weekly": {"day": "sun", "start": "02:00", "end": "03:00", "tz": "Europe/Stockholm"}},
            "2026-11-29T02:30:00Z",
            False,
        ),
        ({"weekly": {"day": "sat", "start": "23:00", "end": "01:00"}}, "2026-11-28T23:30:00Z", True),
        ({"weekly": {"day": "sat", "start": "23:00", "end": "01:00"}}, "2026-11-29T00:30:00Z", True),
        ({"weekly": {"day": "sat", "start": "23:00", "end": "01:00"}}, "2026-11-28T00:30:00Z", False),
    ],
    ids=[
        "one-off-inside",
        "one-off-end-exclusive",
        "weekly-local-time",
        "weekly-after",
        "over-midnight-sat",
        "over-midnight-sun",
        "over-midnight-not-sat-morning",
    ],
)
def test_maintenance_windows(window: dict[str, Any], instant: str, inside: bool) -> None:
    from datetime import datetime

    assert MaintenanceWindow.model_validate(window).contains(datetime.fromisoformat(instant)) is inside
