"""A failed run as the alerts see it: the first failing assertion or the error, naming the failing step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts.v1 import CheckCompleted
from contracts.v1.base import utcnow
from contracts.v1.runs import AssertionOutcome, RunError
from services.alerts.outcomes import failure_detail
from services.common.channels.base import describe_assertion

FAILED = AssertionOutcome(source="status_code", comparison="equals", target=200, observed=404, passed=False)


def completed(**fields: Any) -> CheckCompleted:
    now = utcnow()
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=now,
        region="us-east-1",
        status="failed",
        started_at=now,
        completed_at=now,
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        pytest.param({"assertions": [FAILED]}, "status_code equals 200 — actual 404", id="single-request"),
        pytest.param(
            {"assertions": [FAILED], "failed_step": "fetch"},
            "step 'fetch': status_code equals 200 — actual 404",
            id="step-assertion",
        ),
        pytest.param(
            {
                "error": RunError(cls="timeout", message="step 'fetch': no complete response"),
                "failed_step": "fetch",
            },
            "timeout: step 'fetch': no complete response",
            id="step-error-named-once",
        ),
        pytest.param(
            {
                "error": RunError(cls="template", message="{{ vars.x }}: no variable 'x'"),
                "failed_step": "create",
            },
            "step 'create': template: {{ vars.x }}: no variable 'x'",
            id="error-without-step-name",
        ),
    ],
)
def test_alert_line_names_the_failing_step(fields: dict[str, Any], text: str) -> None:
    detail = failure_detail(completed(**fields))
    assert detail is not None
    line = describe_assertion(detail)
    assert line is not None
    assert line.text == text
