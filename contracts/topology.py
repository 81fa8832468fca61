"""Every exchange, queue and routing key name on the bus, spelled here and nowhere else.

::

    api ──check.changed.v1──► [seymour.control] ──► scheduler.changes.<instance>   (per scheduler)
    scheduler ──check.due.v1──► [seymour.control] ──► router.due
              ─check.due.batch.v1─┘ (several slots in one message)
    router ──<region>──► [seymour.runs] ──► runner.<region>  (a region served from home)
                               └─<region>─► [seymour.runs.<region>] ──► federated to the region's broker
                               runner.<region> ─expired/rejected─► [seymour.runs.dlx] ──► router.dead-runs
    runner ──check.completed.v1──► [seymour.results] ──► results.store, alerts.evaluate
           ─check.completed.batch.v1─┘ (results gathered by a runner's outbox, many in one message)
    router ──run.missed.v1──────► [seymour.results] ──► results.store, alerts.evaluate
           ─run.missed.batch.v1─┘ (runs shed under overload, many in one message) ──► results.store
    runner ──runner.heartbeat.v1► [seymour.results] ──► results.store, router.heartbeats.<instance>
    any consumer ─poison─► [seymour.dlx] ──► seymour.dead-letters
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

CONTROL_EXCHANGE: Final = "seymour.control"
RUNS_EXCHANGE: Final = "seymour.runs"
RESULTS_EXCHANGE: Final = "seymour.results"
DEAD_LETTER_EXCHANGE: Final = "seymour.dlx"
RUNS_DEAD_LETTER_EXCHANGE: Final = "seymour.runs.dlx"
DEAD_LETTER_QUEUE: Final = "seymour.dead-letters"

CHECK_CHANGED: Final = "check.changed.v1"
CHECK_DUE: Final = "check.due.v1"
CHECK_DUE_BATCH: Final = "check.due.batch.v1"
CHECK_COMPLETED: Final = "check.completed.v1"
CHECK_COMPLETED_BATCH: Final = "check.completed.batch.v1"
RUN_MISSED: Final = "run.missed.v1"
RUN_MISSED_BATCH: Final = "run.missed.batch.v1"
RUNNER_HEARTBEAT: Final = "runner.heartbeat.v1"

#: Routing key of each message kind on its exchange (runs are routed by region instead).
ROUTING_KEYS: Final[dict[str, str]] = {
    "check.changed": CHECK_CHANGED,
    "check.due": CHECK_DUE,
    "check.due.batch": CHECK_DUE_BATCH,
    "check.completed": CHECK_COMPLETED,
    "check.completed.batch": CHECK_COMPLETED_BATCH,
    "run.missed": RUN_MISSED,
    "run.missed.batch": RUN_MISSED_BATCH,
    "runner.heartbeat": RUNNER_HEARTBEAT,
}
EXCHANGE_OF: Final[dict[str, str]] = {
    "check.changed": CONTROL_EXCHANGE,
    "check.due": CONTROL_EXCHANGE,
    "check.due.batch": CONTROL_EXCHANGE,
    "run.check": RUNS_EXCHANGE,
    "check.completed": RESULTS_EXCHANGE,
    "check.completed.batch": RESULTS_EXCHANGE,
    "run.missed": RESULTS_EXCHANGE,
    "run.missed.batch": RESULTS_EXCHANGE,
    "runner.heartbeat": RESULTS_EXCHANGE,
}

#: Poison messages are retried this many times before they are dead-lettered.
DELIVERY_LIMIT: Final = 5

#: No message on the bus is larger (a spec, a capped response sample and assertions fit far inside):
#: consumers dead-letter bigger bodies undecoded, and provisioned brokers refuse them
#: (``max_message_size``), so a region host cannot make home parse megabytes.
MAX_MESSAGE_BYTES: Final = 1024 * 1024

ExchangeKind = Literal["topic", "direct", "fanout"]


@dataclass(frozen=True)
class ExchangeSpec:
    """A durable exchange."""

    name: str
    kind: ExchangeKind = "topic"


@dataclass(frozen=True)
class QueueSpec:
    """A queue, the exchange it is bound to, with which keys, and where its dead letters go.

    ``exclusive`` queues belong to one process (a scheduler's or router's private feed of events it
    can rebuild from the database); everything else is durable and survives restarts.
    """

    name: str
    exchange: str
    binding_keys: tuple[str, ...]
    dead_letter_exchange: str = DEAD_LETTER_EXCHANGE
    exclusive: bool = False
    message_ttl_ms: int | None = None
    expires_ms: int | None = None
    extra: dict[str, str | int] = field(default_factory=dict)


EXCHANGES: Final = (
    ExchangeSpec(CONTROL_EXCHANGE),
    ExchangeSpec(RUNS_EXCHANGE, "direct"),
    ExchangeSpec(RESULTS_EXCHANGE),
    ExchangeSpec(DEAD_LETTER_EXCHANGE, "fanout"),
    ExchangeSpec(RUNS_DEAD_LETTER_EXCHANGE, "fanout"),
)

DEAD_LETTERS: Final = QueueSpec(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, ("#",), dead_letter_exchange="")
ROUTER_DUE: Final = QueueSpec("router.due", CONTROL_EXCHANGE, (CHECK_DUE, CHECK_DUE_BATCH))
ROUTER_DEAD_RUNS: Final = QueueSpec("router.dead-runs", RUNS_DEAD_LETTER_EXCHANGE, ("#",))
RESULTS_STORE: Final = QueueSpec(
    "results.store",
    RESULTS_EXCHANGE,
    (CHECK_COMPLETED, CHECK_COMPLETED_BATCH, RUN_MISSED, RUN_MISSED_BATCH, RUNNER_HEARTBEAT),
)
ALERTS_EVALUATE: Final = QueueSpec(
    "alerts.evaluate", RESULTS_EXCHANGE, (CHECK_COMPLETED, CHECK_COMPLETED_BATCH, RUN_MISSED)
)

#: Regional runner queues expire when unused for this long, so a region gone for good does not
#: make home grow forever.
RUNNER_QUEUE_EXPIRES_MS: Final = 7 * 24 * 3600 * 1000


def runner_queue(region: str) -> QueueSpec:
    """The queue a region's runners share: bound to the runs exchange with the region as key."""
    return QueueSpec(
        f"runner.{region}",
        RUNS_EXCHANGE,
        (region,),
        dead_letter_exchange=RUNS_DEAD_LETTER_EXCHANGE,
        expires_ms=RUNNER_QUEUE_EXPIRES_MS,
    )


def scheduler_changes(instance: str) -> QueueSpec:
    """A scheduler process's private feed of check changes (it rebuilds from the db at start)."""
    return QueueSpec(f"scheduler.changes.{instance}", CONTROL_EXCHANGE, (CHECK_CHANGED,), exclusive=True)


def router_heartbeats(instance: str) -> QueueSpec:
    """A router process's private feed of runner heartbeats (to tell 'no runner' from 'expired')."""
    return QueueSpec(f"router.heartbeats.{instance}", RESULTS_EXCHANGE, (RUNNER_HEARTBEAT,), exclusive=True)


# -- a region's broker: federation from home, shovels back to home (see services/common/region_topology) --

_REGION_CODE: Final = r"[a-z0-9][a-z0-9-]{0,38}"
#: A region's account on the home broker is ``seymour-<region>``, optionally ``.<suffix>`` (several
#: deployments sharing one broker). Home trusts what such a user publishes only for that region.
REGION_USER_PREFIX: Final = "seymour-"
_REGION_USER: Final = re.compile(
    rf"{re.escape(REGION_USER_PREFIX)}({_REGION_CODE})(?:\.[A-Za-z0-9_-]{{1,40}})?"
)


def region_runs_exchange(region: str) -> str:
    """The home exchange a region's federation link reads: ``seymour.runs`` forwards the region's key to
    it, so the region's account can be allowed to read this exchange and not ``seymour.runs`` itself
    (on a direct exchange, read permission would let it bind any other region's key)."""
    return f"{RUNS_EXCHANGE}.{region}"


def region_user(region: str, suffix: str = "") -> str:
    """The name of ``region``'s account on the home broker."""
    return f"{REGION_USER_PREFIX}{region}{'.' + suffix if suffix else ''}"


def region_of_user(user: str | None) -> str | None:
    """The region whose account ``user`` is, or ``None`` for any other broker user (home's own)."""
    match = _REGION_USER.fullmatch(user or "")
    return match.group(1) if match else None


#: Name of the federation upstream (the home broker) on the regional broker.
UPSTREAM: Final = "seymour-home"
#: Regional policy that makes the regional ``seymour.runs`` federated from :data:`UPSTREAM`.
RUNS_FEDERATION_POLICY: Final = "seymour-runs-from-home"
#: Regional queue bound to ``seymour.results`` with ``#``: everything runners publish, shovelled home.
RESULTS_OUTBOX: Final = "region.results-outbox"
#: Regional queue bound to ``seymour.runs.dlx``: runs that expired unrun in the region, shovelled home.
DEAD_RUNS_OUTBOX: Final = "region.dead-runs-outbox"
RESULTS_SHOVEL: Final = "seymour-results-to-home"
DEAD_RUNS_SHOVEL: Final = "seymour-dead-runs-to-home"
#: Home policy: runs that expire while buffered on home (WAN down) are dead-lettered, not dropped.
HOME_BUFFER_POLICY: Final = "seymour-federation-buffers"
HOME_BUFFER_PATTERN: Final = r"^federation: seymour\.runs(\.[a-z0-9-]+)? -> "
#: Regional brokers are named ``seymour-<region>`` (see the module docstring).
CLUSTER_NAME_PREFIX: Final = "seymour-"
