"""A small client of the RabbitMQ management HTTP API: enough to apply a region's plan and read its links."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp

from services.common.region_topology import BrokerAddress, Step

log = logging.getLogger(__name__)


class ManagementError(RuntimeError):
    """The management API refused a request or could not be reached."""


class ManagementApi:
    """``async with ManagementApi(address) as api: await api.apply(steps)``."""

    def __init__(self, address: BrokerAddress, *, timeout: float = 10.0) -> None:
        self.address = address
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ManagementApi:
        token = base64.b64encode(f"{self.address.username}:{self.address.password}".encode()).decode()
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Basic {token}"}, timeout=self._timeout
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; returns the decoded JSON answer (``None`` for an empty one).

        Raises :class:`ManagementError` on a refused request (status ≥ 400) or a connection failure.
        """
        if self._session is None:
            raise ManagementError("ManagementApi used outside 'async with'")
        url = f"{self.address.api_url}{path}"
        try:
            async with self._session.request(method, url, json=body) as response:
                text = await response.text()
                if response.status >= 400:
                    raise ManagementError(f"{method} {path} → {response.status}: {text[:300]}")
                if not text:
                    return None
                return await response.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise ManagementError(f"{method} {path} failed: {exc}") from exc

    async def get(self, path: str) -> Any:
        """GET ``path``; ``None`` when it does not exist (404)."""
        try:
            return await self.request("GET", path)
        except ManagementError as exc:
            if "→ 404" in str(exc):
                return None
            raise

    async def apply(self, steps: Sequence[Step]) -> None:
        """Send every step in order; stops at the first refusal (re-running resumes where it failed)."""
        for step in steps:
            try:
                await self.request(step.method, step.path, step.body)
            except ManagementError as exc:
                if not (step.missing_ok and "→ 404" in str(exc)):
                    raise
                continue
            log.info("applied %s method=%s path=%s", step.what or "step", step.method, step.path)
