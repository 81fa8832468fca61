"""A tiny JSON client for tests that talk to a running Seymour over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Client:
    """Bearer-authenticated JSON calls against ``base``."""

    base: str
    token: str

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        """One request; returns status and decoded JSON (or None)."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.request(
                method,
                self.base + path,
                json=body,
                params=params or None,
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response,
        ):
            payload = await response.json(content_type=None) if response.status != 204 else None
            return response.status, payload

    async def ok(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        """One request that must succeed."""
        status, payload = await self.call(method, path, body, **params)
        assert status < 400, f"{method} {path} → {status}: {payload}"
        return payload

    async def runs(self, check_id: str, **params: str) -> list[dict[str, Any]]:
        """Runs of a check, newest first."""
        page = await self.ok("GET", f"/api/v1/checks/{check_id}/runs", limit="500", **params)
        return list(page["items"])
