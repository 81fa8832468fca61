"""Whom home believes: a region's broker account speaks only for that region, and everyone must say who."""

from __future__ import annotations

from typing import Final

from contracts.topology import region_of_user
from contracts.v1 import AnyMessage

#: What a region's links carry home: its runners' results (alone or batched) and heartbeats, the runs they
#: received too late (``run.missed``), and runs that expired in its queue (``run.check``, dead-lettered).
REGION_KINDS: Final = frozenset(
    {"check.completed", "check.completed.batch", "runner.heartbeat", "run.missed", "run.check"}
)


def refusal(message: AnyMessage, user_id: str | None) -> str | None:
    """Why ``message`` must not be believed, or ``None``.

    ``user_id`` is the AMQP property, which RabbitMQ checks against the publishing connection's account:
    every publisher of this code base stamps it (the shovels stamp their link's account and federation
    keeps home's), so a message without one came from a client that chose to hide — refused, since a
    region's account could otherwise speak anonymously. A region's account (``seymour-<region>``) may
    only send :data:`REGION_KINDS`, and only about its own region. Any other account is home's own.
    """
    if not user_id:
        return "no user_id"
    region = region_of_user(user_id)
    if region is None:
        return None
    if message.kind not in REGION_KINDS:
        return f"{message.kind} from region account {user_id}"
    claimed = getattr(message, "region", None)
    if claimed != region:
        return f"region {claimed} claimed by the account of region {region}"
    return None


__all__ = ["REGION_KINDS", "refusal"]
