"""Runner heartbeats: how home learns which regions have a live runner."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.v1.base import AwareDatetime, Message


class RunnerHeartbeat(Message):
    """Event: a runner is alive in a region, with its version and how much it can take."""

    kind: Literal["runner.heartbeat"] = "runner.heartbeat"
    runner_id: str
    region: str
    runner_version: str
    capacity: int = Field(ge=1)
    in_flight: int = Field(default=0, ge=0)
    started_at: AwareDatetime
    interval_s: float = Field(default=10.0, gt=0)
