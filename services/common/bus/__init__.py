"""The bus seam services code against (:mod:`.protocol`); the adapters live in ``.memory`` and ``.rabbit``."""

from __future__ import annotations

from services.common.bus.protocol import (
    Batch,
    BatchHandler,
    Bus,
    Delivery,
    Handler,
    Outcome,
    Publisher,
    Route,
    address_of,
)

__all__ = [
    "Batch",
    "BatchHandler",
    "Bus",
    "Delivery",
    "Handler",
    "Outcome",
    "Publisher",
    "Route",
    "address_of",
]
