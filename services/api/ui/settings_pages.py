"""Settings: users (admins manage them; everyone changes their own password), API tokens, regions."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar import get as http_get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from services.api.auth import create_token
from services.api.errors import ApiError
from services.api.ui.accounts import (
    check_token_name,
    create_user,
    delete_user,
    list_tokens,
    list_users,
    revoke_token,
    set_password,
)
from services.api.ui.pages import region_cards, render
from services.api.ui.security import current_user

Req = Request[Any, Any, Any]


def _field(data: Any, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


class SettingsPages(Controller):
    """The settings page and its forms."""

    path = "/settings"
    include_in_schema = False

    async def _page(
        self,
        request: Req,
        *,
        errors: dict[str, str] | None = None,
        new_token: str | None = None,
        message: str | None = None,
        status_code: int = 200,
    ) -> Template:
        sessions = request.app.state.sessions
        user = current_user(request)
        users = await list_users(sessions)
        if not user.is_admin:
            users = [row for row in users if row.id == user.user_id]
        return render(
            request,
            "pages/settings.html",
            status_code=status_code,
            users=users,
            tokens=await list_tokens(sessions),
            region_cards=await region_cards(request),
            stale_after=request.app.state.settings.runner_stale_after,
            errors=errors or {},
            new_token=new_token,
            message=message,
        )

    @http_get("/")
    async def settings_page(self, request: Req, done: FromQuery[str | None] = None) -> Template:
        """Users, tokens and regions."""
        messages = {
            "user-created": "User created.",
            "user-removed": "User removed.",
            "password-changed": "Password changed.",
            "token-revoked": "Token revoked.",
        }
        return await self._page(request, message=messages.get(done or ""))

    @post("/users", status_code=200)
    async def add_user(self, request: Req) -> Template | Redirect:
        """Create a user (admins only)."""
        if not current_user(request).is_admin:
            raise ApiError(403, "only admins can add users")
        data = await request.form()
        try:
            await create_user(
                request.app.state.sessions,
                _field(data, "username"),
                _field(data, "password"),
                is_admin=_field(data, "is_admin") == "on",
            )
        except ApiError as exc:
            errors = {f"user_{item['field']}": item["message"] for item in exc.errors} or {
                "user_username": str(exc.detail)
            }
            return await self._page(request, errors=errors, status_code=422)
        return Redirect("/settings", query_params={"done": "user-created"}, status_code=303)

    @post("/users/{user_id:uuid}/delete", status_code=200)
    async def remove_user(self, request: Req, user_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Remove a user (admins only; never yourself, never the last admin)."""
        user = current_user(request)
        if not user.is_admin:
            raise ApiError(403, "only admins can remove users")
        if user.user_id == user_id:
            return await self._page(request, errors={"users": "You cannot remove yourself."}, status_code=409)
        try:
            await delete_user(request.app.state.sessions, user_id)
        except ApiError as exc:
            return await self._page(request, errors={"users": str(exc.detail)}, status_code=exc.status_code)
        return Redirect("/settings", query_params={"done": "user-removed"}, status_code=303)

    @post("/users/{user_id:uuid}/password", status_code=200)
    async def change_password(self, request: Req, user_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Change a password (your own, or anyone's as an admin)."""
        user = current_user(request)
        if not user.is_admin and user.user_id != user_id:
            raise ApiError(403, "you can only change your own password")
        data = await request.form()
        try:
            await set_password(request.app.state.sessions, user_id, _field(data, "password"))
        except ApiError as exc:
            message = exc.errors[0]["message"] if exc.errors else str(exc.detail)
            return await self._page(request, errors={f"password_{user_id}": message}, status_code=422)
        if user.user_id == user_id:
            return Redirect("/login", status_code=303)
        return Redirect("/settings", query_params={"done": "password-changed"}, status_code=303)

    @post("/tokens", status_code=200)
    async def add_token(self, request: Req) -> Template:
        """Create an API token and show it, once."""
        data = await request.form()
        try:
            name = check_token_name(_field(data, "name"))
        except ApiError as exc:
            return await self._page(request, errors={"token_name": exc.errors[0]["message"]}, status_code=422)
        _, token = await create_token(request.app.state.sessions, name, current_user(request).user_id)
        return await self._page(request, new_token=token, message=f"Token '{name}' created.")

    @post("/tokens/{token_id:uuid}/revoke", status_code=200)
    async def revoke(self, request: Req, token_id: FromPath[uuid.UUID]) -> Redirect:
        """Revoke an API token."""
        await revoke_token(request.app.state.sessions, token_id)
        return Redirect("/settings", query_params={"done": "token-revoked"}, status_code=303)
