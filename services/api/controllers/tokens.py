"""``/api/v1/tokens``: API tokens — created (the value is returned once), listed, revoked.

Anyone with an account sees and revokes their own tokens; an admin sees and revokes all of them.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field

from services.api.accounts import ANY_OWNER, check_token_name, list_tokens, revoke_token, token_view
from services.api.auth import create_token
from services.api.controllers.shapes import TokenList, TokenOut, declared
from services.api.headers import NO_STORE
from services.api.permissions import caller_id, can_manage_account, has


class TokenCreate(BaseModel):
    """A new token's label and scope (``run``: trigger runs and read checks and runs, nothing else)."""

    name: str = Field(min_length=1, max_length=100)
    scope: Literal["full", "run"] = "full"


def _owner(request: Request[Any, Any, Any]) -> Any:
    return ANY_OWNER if has(request, "admin") else caller_id(request)


class TokensController(Controller):
    """API tokens."""

    path = "/api/v1/tokens"
    opt = can_manage_account

    @get("/")
    async def list_tokens(self, request: Request[Any, Any, Any]) -> TokenList:
        """Your tokens (every token for an admin), prefix only, newest first."""
        rows = await list_tokens(request.app.state.sessions, owner=_owner(request))
        return {"items": [declared(TokenOut, token_view(row)) for row in rows]}

    @post("/", status_code=201, response_headers=NO_STORE)
    async def create_token(self, request: Request[Any, Any, Any], data: JSONBody[TokenCreate]) -> TokenOut:
        """Create a token of yours; ``token`` in the answer is the only time its value is shown."""
        row, token = await create_token(
            request.app.state.sessions, check_token_name(data.name), caller_id(request), scope=data.scope
        )
        return declared(TokenOut, {**token_view(row), "token": token})

    @delete("/{token_id:uuid}", status_code=204)
    async def revoke_token(self, request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID]) -> None:
        """Revoke a token of yours (anyone's for an admin): it stops working at once."""
        await revoke_token(request.app.state.sessions, token_id, owner=_owner(request))
