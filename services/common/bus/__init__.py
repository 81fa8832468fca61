"""The bus seam services code against (:mod:`.protocol`); the adapters live in ``.memory`` and ``.rabbit``."""

from __future__ import annotations

from services.common.bus.protocol import Bus, Delivery, Handler, Publisher, Route, address_of

__all__ = ["Bus", "Delivery", "Handler", "Publisher", "Route", "address_of"]
