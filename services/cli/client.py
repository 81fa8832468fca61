"""A small HTTP client for the CLI commands that talk to a running Seymour's API."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.cli.firstrun import token_path
from services.common.settings import Settings


class ApiFailure(Exception):
    """The API answered with an error (or not at all)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def api_location(url: str | None, token: str | None) -> tuple[str, str | None]:
    """Base URL and token: flags, then SEYMOUR_URL / SEYMOUR_API_TOKEN, then the local ``up`` defaults."""
    settings = Settings()
    base = url or os.environ.get("SEYMOUR_URL") or f"http://{settings.host}:{settings.port}"
    token = token or settings.api_token
    if token is None and token_path(settings).exists():
        token = token_path(settings).read_text().strip()
    return base.rstrip("/"), token


@dataclass
class ApiClient:
    """JSON over HTTP with a Bearer token."""

    base: str
    token: str | None
    timeout: float = 30.0

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """Send one request; returns the decoded JSON or raises :class:`ApiFailure`."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    method, self.base + path, json=body, params=params, headers=headers
                ) as response,
            ):
                payload = await response.json(content_type=None) if response.status != 204 else None
                if response.status >= 400:
                    raise ApiFailure(response.status, payload)
                return payload
        except aiohttp.ClientError as exc:
            raise ApiFailure(0, f"cannot reach {self.base}: {exc}") from None
