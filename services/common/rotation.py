"""Re-sealing every secret at rest under a new deployment key (``seymour secrets rotate``): check and global
secrets, and the secret headers and channel secrets sealed inside specs (:mod:`services.common.sealing`) —
every sealed string of a spec or setting, wherever it sits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.common.db.models import Check, Setting
from services.common.db.sessions import Sessions
from services.common.secretbox import Sealer, SealError, is_sealed


def reseal(value: Any, old: Sealer, new: Sealer) -> tuple[Any, int]:
    """``value`` (any JSON) with every sealed string opened with ``old`` and sealed with ``new``, and how
    many there were. Raises ``SealError`` for a sealed value neither key opens (nothing is written).

    A value the new key already opens is kept: the migrations run before the rotation, with the new
    key, and one that seals what an older version stored in clear seals it under the new key."""
    if is_sealed(value):
        try:
            return new.seal(old.open(value)), 1
        except SealError:
            new.open(value)
            return value, 0
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
