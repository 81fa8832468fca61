"""Control messages: a check's configuration changed, a check's slot is due."""

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
