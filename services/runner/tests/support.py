"""Helpers shared by the runner's tests: a dict-backed resolver and a spec builder."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from contracts.v1 import CheckSpec


class MapResolver(AbstractResolver):
    """A resolver from a dict: known names resolve to their address, others fail like NXDOMAIN."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.names.get(host)
        if address is None:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        kind = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": kind,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def make_spec(url: str, assertions: list[dict[str, Any]] | None = None, **fields: Any) -> CheckSpec:
    """A check spec for ``url``; ``request`` fields may be given as ``request={...}``."""
    request = {"url": url, **fields.pop("request", {})}
    return CheckSpec.model_validate(
        {"name": "test", "regions": ["local"], "request": request, "assertions": assertions or [], **fields}
    )
