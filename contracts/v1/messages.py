"""Control messages: a check's configuration changed, a check's slot is due (alone or with others)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.v1.base import AwareDatetime, Message
from contracts.v1.checks import CheckSpec


class CheckChanged(Message):
    """Event: the api stored a new revision of a check (or deleted it). The scheduler follows it."""

    kind: Literal["check.changed"] = "check.changed"
    check_id: uuid.UUID
    change: Literal["created", "updated", "deleted"]
    revision: int = Field(ge=0)
    spec: CheckSpec | None = None


class CheckDue(Message):
    """Command: run this check for this slot, from all its regions.

    ``trigger`` is ``manual`` for *Run now*; those slots are the instant of the request. ``epoch`` is the
    scheduler leader's fencing token, so the router can ignore a deposed leader that wakes up.
    """

    kind: Literal["check.due"] = "check.due"
    check_id: uuid.UUID
    slot: AwareDatetime
    revision: int = Field(ge=0)
    spec: CheckSpec
    trigger: Literal["scheduled", "manual", "confirmation"] = "scheduled"
    regions: list[str] | None = None
    epoch: int = 0


class CheckDueBatch(Message):
    """Command: several slots, each exactly what its own ``CheckDue`` would say, in one message.

    The scheduler leader gathers the slots that fall due within a few milliseconds into one batch, so one
    publish, one confirm, one queue entry and one delivery carry many slots instead of one each (each of
    those costs about as much as the slot itself in the broker and the router). Items keep their own
    check, slot, revision, spec, trigger and epoch, so the router fences, names and expires every run as
    if its slot had come alone. A slot alone still travels as a plain ``CheckDue``.
    """

    kind: Literal["check.due.batch"] = "check.due.batch"
    items: list[CheckDue] = Field(min_length=1)


def due_slots(message: CheckDue | CheckDueBatch) -> list[CheckDue]:
    """The slots a ``CheckDue`` or a ``CheckDueBatch`` carries, in order."""
    return message.items if isinstance(message, CheckDueBatch) else [message]
