"""Version 1 of Seymour's contracts: within v1 only optional fields are ever added."""

from __future__ import annotations

from contracts.v1.base import Message, utcnow
from contracts.v1.checks import (
    AlertChannel,
    AlertPolicy,
    Assertion,
    CheckSpec,
    MaintenanceWindow,
    RequestSpec,
)
from contracts.v1.codec import MESSAGE_TYPES, AnyMessage, decode, encode
from contracts.v1.failures import (
    AssertionFailure,
    ErrorFailure,
    FailureDetail,
    MissedFailure,
    ReadFailure,
    read_failure,
)
from contracts.v1.messages import CheckChanged, CheckDue, CheckDueBatch, due_slots
from contracts.v1.runners import RunnerHeartbeat
from contracts.v1.runs import (
    AssertionOutcome,
    CheckCompleted,
    CheckCompletedBatch,
    MissedReason,
    ResponseSample,
    RunCheck,
    RunError,
    RunMissed,
    RunMissedBatch,
    Timings,
    run_id_for,
)

__all__ = [
    "MESSAGE_TYPES",
    "AlertChannel",
    "AlertPolicy",
    "AnyMessage",
    "Assertion",
    "AssertionFailure",
    "AssertionOutcome",
    "CheckChanged",
    "CheckCompleted",
    "CheckCompletedBatch",
    "CheckDue",
    "CheckDueBatch",
    "CheckSpec",
    "ErrorFailure",
    "FailureDetail",
    "MaintenanceWindow",
    "Message",
    "MissedFailure",
    "MissedReason",
    "ReadFailure",
    "RequestSpec",
    "ResponseSample",
    "RunCheck",
    "RunError",
    "RunMissed",
    "RunMissedBatch",
    "RunnerHeartbeat",
    "Timings",
    "decode",
    "due_slots",
    "encode",
    "read_failure",
    "run_id_for",
    "utcnow",
]
