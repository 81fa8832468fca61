"""``/api/v1/users``: the people who can log in to the UI."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field

from services.api.accounts import create_user, delete_user, list_users, set_password, set_role, user_view
from services.api.controllers.shapes import UserList, UserOut, declared
from services.api.permissions import Role, admin_only


class UserCreate(BaseModel):
    """A new user."""

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8)
    is_admin: bool = False
    role: Role | None = Field(default=None, description="admin, editor or viewer (default editor)")


class PasswordChange(BaseModel):
    """A new password."""

    password: str = Field(min_length=8)


class RoleChange(BaseModel):
    """A user's new role."""

    role: Role


def _user(row: Any) -> UserOut:
    return declared(UserOut, user_view(row))


class UsersController(Controller):
    """Users: list, create, remove, change password."""

    path = "/api/v1/users"
    opt = admin_only

    @get("/")
    async def list_users(self, request: Request[Any, Any, Any]) -> UserList:
        """Every user, by name."""
        return {"items": [_user(row) for row in await list_users(request.app.state.sessions)]}

    @post("/", status_code=201)
    async def create_user(self, request: Request[Any, Any, Any], data: JSONBody[UserCreate]) -> UserOut:
        """Create a user; 409 if the name is taken."""
        row = await create_user(
            request.app.state.sessions, data.username, data.password, is_admin=data.is_admin, role=data.role
        )
        return _user(row)

    @delete("/{user_id:uuid}", status_code=204)
    async def delete_user(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID]) -> None:
        """Remove a user, their sessions and tokens; 409 for the last admin."""
        await delete_user(request.app.state.sessions, user_id)

    @put("/{user_id:uuid}/password", status_code=204)
    async def change_password(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], data: JSONBody[PasswordChange]
    ) -> None:
        """Set a user's password (their open sessions end)."""
        await set_password(request.app.state.sessions, user_id, data.password)

    @put("/{user_id:uuid}/role")
    async def change_role(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], data: JSONBody[RoleChange]
    ) -> UserOut:
        """Make a user an admin, editor or viewer; 409 when it would leave no admin."""
        return _user(await set_role(request.app.state.sessions, user_id, data.role))
