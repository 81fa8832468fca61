"""Results fit on the bus: an endpoint that answers with huge samples cannot make its run vanish at home."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts.topology import MAX_MESSAGE_BYTES
from contracts.v1 import CheckCompleted, encode, utcnow
from services.runner.fit import fit

NOW = utcnow()
HUGE_HEADERS = {f"x-h{n}": "v" * 2000 for n in range(100)}


def completed(*, headers: dict[str, str], steps: int) -> CheckCompleted:
    sample = {"status_code": 200, "headers": headers, "body": "b" * 8192}
    assertion = {
        "source": "json_body",
        "comparison": "equals",
        "target": 1,
        "observed": ["o" * 500] * 50,
        "passed": False,
    }
    step: dict[str, Any] = {"name": "s", "status": "failed", "response": sample, "assertions": [assertion]}
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=NOW,
        region="eu-north-1",
        status="failed",
        started_at=NOW,
        completed_at=NOW,
        response=sample,  # type: ignore[arg-type]
        assertions=[assertion],  # type: ignore[list-item]
        steps=[step] * steps,  # type: ignore[list-item]
        failed_step="s",
    )


CASES = [
    ("ordinary", completed(headers={"content-type": "application/json"}, steps=2), True),
    ("hundred-long-headers-thirty-steps", completed(headers=HUGE_HEADERS, steps=30), False),
]


@pytest.mark.parametrize(("result", "unchanged"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_result_always_fits_and_keeps_its_verdict(result: CheckCompleted, unchanged: bool) -> None:
    fitted = fit(result)
    assert len(encode(fitted)) <= MAX_MESSAGE_BYTES
    assert (fitted == result) is unchanged
    assert (fitted.status, fitted.failed_step, fitted.run_id) == (
        result.status,
        result.failed_step,
        result.run_id,
    )
    assert [a.passed for a in fitted.assertions] == [a.passed for a in result.assertions]
    assert [s.status for s in fitted.steps or []] == [s.status for s in result.steps or []]
