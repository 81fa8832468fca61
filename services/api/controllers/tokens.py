"""``/api/v1/tokens``: API tokens — created (the value is returned once), listed, revoked."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field

from services.api.accounts import check_token_name, list_tokens, revoke_token, token_view
from services.api.auth import admin_guard, create_token


class TokenCreate(BaseModel):
    """A new token's label."""

    name: str = Field(min_length=1, max_length=100)


class TokensController(Controller):
    """API tokens."""

    path = "/api/v1/tokens"
    guards = [admin_guard]

    @get("/")
    async def list_tokens(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Every token (prefix only), newest first."""
        return {"items": [token_view(row) for row in await list_tokens(request.app.state.sessions)]}

    @post("/", status_code=201)
    async def create_token(
        self, request: Request[Any, Any, Any], data: JSONBody[TokenCreate]
    ) -> dict[str, Any]:
        """Create a token; ``token`` in the answer is the only time its value is shown."""
        row, token = await create_token(request.app.state.sessions, check_token_name(data.name))
        return {**token_view(row), "token": token}

    @delete("/{token_id:uuid}", status_code=204)
    async def revoke_token(self, request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID]) -> None:
        """Revoke a token: it stops working at once."""
        await revoke_token(request.app.state.sessions, token_id)
