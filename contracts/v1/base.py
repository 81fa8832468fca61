"""The envelope every v1 message shares: its id, when it was made, and its kind and version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _require_aware(value: datetime) -> datetime:
    """Reject naive datetimes: every instant on the wire is UTC and says so."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


class Frozen(BaseModel):
    """Immutable model that refuses unknown fields, so typos in configuration are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(BaseModel):
    """Base of every bus message. Unknown fields are ignored so newer v1 producers stay readable."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    version: Literal[1] = 1
