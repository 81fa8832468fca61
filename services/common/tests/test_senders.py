"""Whom home believes on the bus: a region's account only about its region, nobody anonymously."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts.topology import CHECK_COMPLETED_BATCH
from contracts.v1 import (
    AnyMessage,
    CheckCompleted,
    CheckCompletedBatch,
    CheckDue,
    CheckSpec,
    RunCheck,
    RunMissed,
    utcnow,
)
from services.common.bus.senders import refusal
from services.common.region_topology import REGION_RESULT_KEYS

NOW = utcnow()
SPEC = CheckSpec(name="x", request={"url": "http://127.0.0.1:9/"}, regions=["eu-north-1"])  # type: ignore[arg-type]
IDS: dict[str, Any] = {"run_id": uuid.uuid4(), "check_id": uuid.uuid4(), "slot": NOW}


def completed(region: str) -> CheckCompleted:
    return CheckCompleted(**IDS, region=region, status="passed", started_at=NOW, completed_at=NOW)


DUE = CheckDue(check_id=uuid.uuid4(), slot=NOW, revision=1, spec=SPEC, trigger="manual")
RUN = RunCheck(**IDS, region="eu-north-1", spec=SPEC, expires_at=NOW)
MISSED = RunMissed(**IDS, region="eu-north-1", reason="expired")
OTHER_MISSED = RunMissed(**IDS, region="us-west-2", reason="expired")

CASES: list[tuple[str, AnyMessage, str | None, bool]] = [
    ("home-result", completed("us-west-2"), "seymour", True),
    ("home-manual-due", DUE, "seymour", True),
    ("region-own-result", completed("eu-north-1"), "seymour-eu-north-1", True),
    ("region-own-result-suffixed-account", completed("eu-north-1"), "seymour-eu-north-1.prod", True),
    ("region-own-dead-run", RUN, "seymour-eu-north-1", True),
    ("region-other-result", completed("us-west-2"), "seymour-eu-north-1", False),
    ("region-prefix-of-other", completed("eu-north-1"), "seymour-eu-north-1x", False),
    ("region-manual-due", DUE, "seymour-eu-north-1", False),
    ("region-own-run-received-too-late", MISSED, "seymour-eu-north-1", True),
    (
        "region-other-missed-run",
        MISSED.model_copy(update={"region": "us-west-2"}),
        "seymour-eu-north-1",
        False,
    ),
    (
        "region-own-batch",
        CheckCompletedBatch(region="eu-north-1", items=[completed("eu-north-1")]),
        "seymour-eu-north-1",
        True,
    ),
    (
        "region-other-batch",
        CheckCompletedBatch(region="us-west-2", items=[completed("us-west-2")]),
        "seymour-eu-north-1",
        False,
    ),
    ("anonymous-result", completed("eu-north-1"), None, False),
    ("anonymous-due", DUE, "", False),
]


@pytest.mark.parametrize(
    ("message", "user_id", "believed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refusal(message: AnyMessage, user_id: str | None, believed: bool) -> None:
    assert (refusal(message, user_id) is None) is believed


def test_a_region_may_publish_batches_of_its_results_home() -> None:
    """Without the batch key in the region's topic permissions its results shovel would wedge on the first
    batch a runner sends."""
    assert CHECK_COMPLETED_BATCH in REGION_RESULT_KEYS
