"""Messages → table rows: the one place that decides how a run is stored."""

from __future__ import annotations

from typing import Any

from contracts.v1 import CheckCompleted, RunMissed

#: Stored response bodies are capped again here (the runner already bounds them) to keep rows small.
MAX_STORED_BODY = 64 * 1024


def _capped(response: dict[str, Any] | None, limit: int = MAX_STORED_BODY) -> dict[str, Any] | None:
    if response and response.get("body") and len(response["body"]) > limit:
        response["body"] = response["body"][:limit]
        response["truncated"] = True
    return response


def completed_row(message: CheckCompleted) -> dict[str, Any]:
    """The ``runs`` row for a finished run. A multi-step run keeps every step (each sample capped to a
    share of the body budget, so a 20-step run is no bigger than a few single ones)."""
    response = _capped(message.response.model_dump(mode="json") if message.response else None)
    steps: list[dict[str, Any]] | None = None
    if message.steps is not None:
        share = max(4096, MAX_STORED_BODY // max(1, len(message.steps)))
        steps = []
        for step in message.steps:
            row = step.model_dump(mode="json", by_alias=True)
            row["response"] = _capped(row.get("response"), share)
            steps.append(row)
    passed = sum(1 for outcome in message.assertions if outcome.passed)
    return {
        "run_id": message.run_id,
        "check_id": message.check_id,
        "region": message.region,
        "slot": message.slot,
        "trigger": message.trigger,
        "status": message.status,
        "started_at": message.started_at,
        "completed_at": message.completed_at,
        "total_ms": message.timings.total_ms,
        "status_code": message.response.status_code if message.response else None,
        "error_class": message.error.cls if message.error else None,
        "error_message": message.error.message if message.error else None,
        "assertions_passed": passed,
        "assertions_total": len(message.assertions),
        "degraded": message.degraded,
        "timings": message.timings.model_dump(mode="json"),
        "response": response,
        "assertions": [outcome.model_dump(mode="json") for outcome in message.assertions],
        "request": message.request,
        "runner_id": message.runner_id,
        "steps": steps,
        "failed_step": message.failed_step,
        "certificate": message.certificate.model_dump(mode="json") if message.certificate else None,
    }


def missed_row(message: RunMissed) -> dict[str, Any]:
    """The ``runs`` row for a run that never started."""
    return {
        "run_id": message.run_id,
        "check_id": message.check_id,
        "region": message.region,
        "slot": message.slot,
        "trigger": message.trigger,
        "status": "missed",
        "started_at": None,
        "completed_at": max(message.created_at, message.slot),
        "total_ms": None,
        "status_code": None,
        "error_class": message.reason,
        "error_message": message.detail or None,
        "assertions_passed": 0,
        "assertions_total": 0,
        "degraded": False,
        "timings": None,
        "response": None,
        "assertions": [],
        "request": None,
        "runner_id": None,
        "steps": None,
        "failed_step": None,
        "certificate": None,
    }
