"""Run messages: one run of a check from one region, its outcome, or the record that it never ran."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.v1.base import AwareDatetime, Message
from contracts.v1.checks import CheckSpec, Comparison, Source

RUN_NAMESPACE: Final = uuid.UUID("6f1c5a52-8f4e-4d8e-9a8e-5e7d0c3b9a11")

RunStatus = Literal["passed", "failed", "error", "missed"]
ErrorClass = Literal[
    "dns",
    "connect",
    "tls",
    "timeout",
    "too_large",
    "http_error",
    "assertion",
    "blocked",
    "expired",
    "no_runner",
    "internal",
    "template",
]


def run_id_for(check_id: uuid.UUID, slot: datetime, region: str, trigger: str = "scheduled") -> uuid.UUID:
    """The deterministic id of one run: same check, slot and region → same id, so redelivery dedups."""
    key = f"{check_id}|{slot.isoformat()}|{region}"
    if trigger != "scheduled":
        key += f"|{trigger}"
    return uuid.uuid5(RUN_NAMESPACE, key)


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Timings(_Part):
    """Phase timings in milliseconds, measured with a monotonic clock; ``None`` where a phase did not
    happen (no TLS on http, no DNS for an IP literal, no response at all)."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    download_ms: float | None = None
    total_ms: float | None = None


class ResponseSample(_Part):
    """What came back, bounded: headers lower-cased, body capped and decoded leniently."""

    status_code: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    truncated: bool = False
    size: int = 0


class RunError(_Part):
    """Why a run has no usable response (or never ran)."""

    cls: ErrorClass = Field(alias="class")
    message: str = ""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class AssertionOutcome(_Part):
    """One assertion as evaluated: what was expected, what was observed, whether it held."""

    source: Source
    property: str | None = None
    comparison: Comparison
    target: Any = None
    observed: Any = None
    passed: bool
    message: str | None = None


class CertificateInfo(_Part):
    """The TLS certificate the server actually presented (the leaf), as a user reads it."""

    subject: str
    issuer: str
    san: list[str] = Field(default_factory=list)
    not_before: AwareDatetime
    not_after: AwareDatetime
    days_until_expiry: int
    hostname_match: bool


StepStatus = Literal["passed", "failed", "error", "skipped"]


class StepOutcome(_Part):
    """One step of a multi-step run: its request, response, phases and assertions, and the values it
    extracted. ``skipped`` when an earlier main step failed; teardown steps carry ``teardown: true``."""

    name: str
    teardown: bool = False
    status: StepStatus
    started_at: AwareDatetime | None = None
    request: dict[str, Any] | None = None
    response: ResponseSample | None = None
    timings: Timings = Field(default_factory=Timings)
    error: RunError | None = None
    assertions: list[AssertionOutcome] = Field(default_factory=list)
    extracted: dict[str, Any] = Field(default_factory=dict)
    certificate: CertificateInfo | None = None


class RunCheck(Message):
    """Command to a region's runner: run this check for this slot, unless ``expires_at`` has passed.

    ``spec`` is the runner's view of the check: the router sends it with ``alerts`` emptied, so alert
    channels and their secrets never leave home.
    """

    kind: Literal["run.check"] = "run.check"
    run_id: uuid.UUID
    check_id: uuid.UUID
    slot: AwareDatetime
    region: str
    revision: int = 0
    spec: CheckSpec
    expires_at: AwareDatetime
    trigger: Literal["scheduled", "manual", "confirmation"] = "scheduled"
    #: The secrets this run's requests use, in clear: opened at home for this run only.
    secrets: dict[str, str] | None = None


class CheckCompleted(Message):
    """Event: a runner finished one run. ``failed`` = answered but an assertion failed; ``error`` = no
    usable response (``error.class`` says why)."""

    kind: Literal["check.completed"] = "check.completed"
    run_id: uuid.UUID
    check_id: uuid.UUID
    slot: AwareDatetime
    region: str
    trigger: Literal["scheduled", "manual", "confirmation"] = "scheduled"
    status: Literal["passed", "failed", "error"]
    started_at: AwareDatetime
    completed_at: AwareDatetime
    response: ResponseSample | None = None
    timings: Timings = Field(default_factory=Timings)
    error: RunError | None = None
    assertions: list[AssertionOutcome] = Field(default_factory=list)
    request: dict[str, Any] | None = None
    runner_id: str | None = None
    degraded: bool = False
    steps: list[StepOutcome] | None = None
    failed_step: str | None = None
    certificate: CertificateInfo | None = None


#: Results in one ``CheckCompletedBatch`` at most (a runner's outbox sends far fewer: see its settings).
MAX_BATCH_ITEMS: Final = 1000


class CheckCompletedBatch(Message):
    """Event: several runs one region's runner finished, each exactly what its own ``CheckCompleted``
    would say.

    A result alone costs a persistent publish, a confirm, a queue entry and a delivery to two consumers;
    under load the broker's cost is per message, not per byte, so a runner gathers the results that
    complete within a few milliseconds into one message. Items keep their own run ids, so a redelivered
    batch stores nothing twice. ``region`` is the batch's: every item must be of it (a region's account
    is believed only about its own region, and a batch is believed or refused whole), otherwise the
    whole message is invalid. Added in v1, read by results and alerts before runners send it.
    """

    kind: Literal["check.completed.batch"] = "check.completed.batch"
    region: str
    items: list[CheckCompleted] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)

    @model_validator(mode="after")
    def _one_region(self) -> Self:
        strays = sorted({item.region for item in self.items if item.region != self.region})
        if strays:
            raise ValueError(f"items of regions {strays} in a batch of region {self.region}")
        return self


MissedReason = Literal["expired", "no_runner", "no_leader", "not_published", "overloaded", "leader_late"]
"""Why a run never started. Added in v1, each read by results and alerts before any service sends it:
``overloaded`` (the router shed the run because its region's runners were already further behind than
the router's bound — recording it at once costs far less than carrying a run that would only expire or
run late) and ``leader_late`` (a scheduler was leading, but its loop stalled or its lease lapsed for a
moment past the slot, so it skipped the slot: unlike ``no_leader``, the fault is the leader's own)."""


class RunMissed(Message):
    """Event: a run never started — it expired in its queue, no runner serves its region, no scheduler
    led at its slot (``no_leader``: the database or every scheduler was away), the leading scheduler
    skipped its slot (``leader_late``), the slot could not be handed to the broker while it was still
    fresh (``not_published``), or the router shed it because the region's runners were too far behind
    (``overloaded``)."""

    kind: Literal["run.missed"] = "run.missed"
    run_id: uuid.UUID
    check_id: uuid.UUID
    slot: AwareDatetime
    region: str
    trigger: Literal["scheduled", "manual", "confirmation"] = "scheduled"
    reason: MissedReason
    detail: str = ""


class RunMissedBatch(Message):
    """Event: several runs that never started, each exactly what its own ``RunMissed`` would say.

    Under overload the router sheds many runs a second; one message (one publish, one confirm, one queue
    entry, one delivery) for all the runs shed while routing one batch of slots keeps the missed path
    far cheaper than the runs it replaces. Items keep their own run ids, so a redelivered batch stores
    nothing twice. It goes to ``results.store`` only: to alerting a missed run is no data, and a slot's
    absent region reads the same as a missed one.
    """

    kind: Literal["run.missed.batch"] = "run.missed.batch"
    items: list[RunMissed] = Field(min_length=1)
