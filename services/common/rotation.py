"""Re-sealing every secret at rest under a new deployment key (``seymour secrets rotate``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.common.db.models import Check, Setting
from services.common.db.sessions import Sessions
from services.common.secretbox import Sealer, is_sealed


def reseal(value: Any, old: Sealer, new: Sealer) -> tuple[Any, int]:
    """``value`` (any JSON) with every sealed string opened with ``old`` and sealed with ``new``, and how
    many there were. Raises ``SealError`` for a sealed value ``old`` cannot open (nothing is written)."""
    if is_sealed(value):
        return new.seal(old.open(value)), 1
    if isinstance(value, dict):
        count = 0
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], found = reseal(item, old, new)
            count += found
        return out, count
    if isinstance(value, list):
        items = [reseal(item, old, new) for item in value]
        return [item for item, _ in items], sum(found for _, found in items)
    return value, 0


async def rotate(sessions: Sessions, old: Sealer, new: Sealer) -> int:
    """Re-seal every sealed value of every check and setting in one transaction; returns how many."""
    total = 0
    async with sessions() as session, session.begin():
        for row in (await session.execute(select(Check).with_for_update())).scalars():
            spec, found = reseal(row.spec, old, new)
            if found:
                row.spec = spec
                total += found
        for setting in (await session.execute(select(Setting).with_for_update())).scalars():
            value, found = reseal(setting.value, old, new)
            if found:
                setting.value = value
                total += found
    return total
