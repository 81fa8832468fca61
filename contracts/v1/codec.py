"""JSON encoding of v1 messages, and decoding by their ``kind`` discriminator."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, TypeAdapter

from contracts.v1.messages import CheckChanged, CheckDue, CheckDueBatch
from contracts.v1.runners import RunnerHeartbeat
from contracts.v1.runs import CheckCompleted, CheckCompletedBatch, RunCheck, RunMissed, RunMissedBatch

AnyMessage = Annotated[
    CheckChanged
    | CheckDue
    | CheckDueBatch
    | RunCheck
    | CheckCompleted
    | CheckCompletedBatch
    | RunMissed
    | RunMissedBatch
    | RunnerHeartbeat,
    Field(discriminator="kind"),
]

MESSAGE_TYPES: Final = (
    CheckChanged,
    CheckDue,
    CheckDueBatch,
    RunCheck,
    CheckCompleted,
    CheckCompletedBatch,
    RunMissed,
    RunMissedBatch,
    RunnerHeartbeat,
)

_ADAPTER: Final[TypeAdapter[AnyMessage]] = TypeAdapter(AnyMessage)


def encode(message: AnyMessage) -> bytes:
    """Serialize a message to UTF-8 JSON (aliases on, so ``error.class`` keeps its wire name)."""
    return message.model_dump_json(by_alias=True).encode()


def decode(data: bytes | str) -> AnyMessage:
    """Parse JSON into the message its ``kind`` names. Raises ``pydantic.ValidationError``."""
    return _ADAPTER.validate_json(data)
