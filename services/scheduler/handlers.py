"""The scheduler's one consumer: a check's configuration changed, so its job changes too."""

from __future__ import annotations

from contracts.v1 import CheckChanged
from services.common.bus import Delivery
from services.scheduler.schedule import CheckSchedule


async def handle_check_changed(message: CheckChanged, delivery: Delivery, *, schedule: CheckSchedule) -> None:
    """Add, reschedule, update or remove the check's job (in memory, so it applies at once)."""
    schedule.apply_change(message)
