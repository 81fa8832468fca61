"""Who may do what: roles (admin, editor, viewer), token scopes (full, run) and the guard that checks them.

Every route needs a permission. A handler names it with ``opt={"permission": ...}`` (or the ``can_*``
shorthands below); one that does not gets the default for its method: ``read`` for GET/HEAD/OPTIONS and
``write`` for anything else, so a new form or endpoint is closed to viewers and run-only tokens until
someone decides otherwise.
"""

from __future__ import annotations

from typing import Any, Final, Literal, cast, get_args

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler

from services.common.errors import Invalid

Role = Literal["admin", "editor", "viewer"]
Scope = Literal["full", "run"]
Permission = Literal["read", "results", "run", "write", "account", "admin"]

ROLES: Final[tuple[Role, ...]] = get_args(Role)
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)

#: ``results``: checks (secrets masked), their runs and regions — what a CI job reads back after a run.
#: ``read``: everything a viewer sees (adds incidents, notifications, global settings, metrics).
#: ``account``: one's own password and API tokens.
ROLE_GRANTS: Final[dict[Role, frozenset[Permission]]] = {
    "admin": frozenset(get_args(Permission)),
    "editor": frozenset({"read", "results", "run", "write", "account"}),
    "viewer": frozenset({"read", "results", "account"}),
}
SCOPE_GRANTS: Final[dict[Scope, frozenset[Permission]]] = {
    "full": frozenset(get_args(Permission)),
    "run": frozenset({"results", "run"}),
}

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class PermissionDenied(HTTPException):
    """The caller is known but may not do this."""

    status_code = 403


def grants(role: str | None, scope: str | None = "full") -> frozenset[Permission]:
    """What a caller with ``role`` and token ``scope`` may do; nothing for an unknown role or scope."""
    by_role: frozenset[Permission] = ROLE_GRANTS.get(cast(Role, role), frozenset())
    by_scope: frozenset[Permission] = SCOPE_GRANTS.get(cast(Scope, scope), frozenset())
    return by_role & by_scope


def required(handler: BaseRouteHandler, method: str) -> Permission:
    """The permission ``handler`` needs for ``method``: its ``permission`` opt, else the method's default."""
    named = handler.opt.get("permission")
    if named is not None:
        if named not in get_args(Permission):
            raise ValueError(f"unknown permission {named!r} on {handler}")
        return cast(Permission, named)
    return "read" if method.upper() in SAFE_METHODS else "write"


def remember(
    connection: ASGIConnection[Any, Any, Any, Any], granted: frozenset[Permission], user_id: Any
) -> None:
    """Keep the caller's grants and user id on the request for :func:`permission_guard` and the handlers."""
    connection.state.seymour_grants = granted
    connection.state.seymour_user_id = user_id


def caller_grants(connection: ASGIConnection[Any, Any, Any, Any]) -> frozenset[Permission]:
    """The grants an authentication guard kept for this request (none if it kept nothing)."""
    found = getattr(connection.state, "seymour_grants", None)
    return found if isinstance(found, frozenset) else frozenset()


def has(connection: ASGIConnection[Any, Any, Any, Any], permission: Permission) -> bool:
    """Whether the caller of ``connection`` holds ``permission``."""
    return permission in caller_grants(connection)


def caller_id(connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
    """The caller's user id, or ``None`` for a token that belongs to no user."""
    return getattr(connection.state, "seymour_user_id", None)


async def permission_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """403 unless the caller holds what ``handler`` needs; runs after an authentication guard."""
    method = str(connection.scope.get("method", "GET"))
    need = required(handler, method)
    if need not in caller_grants(connection):
        raise PermissionDenied(detail=DENIED[need])


DENIED: Final[dict[Permission, str]] = {
    "read": "your token may not read this (a run-only token reads checks and runs only)",
    "results": "you may not read checks and runs",
    "run": "viewers cannot run checks: ask an editor or an admin",
    "write": "read-only: viewers and run-only tokens cannot change anything",
    "account": "a run-only token cannot manage accounts or tokens",
    "admin": "this needs an administrator",
}

#: Handler keyword arguments (they land in ``opt``): ``@post("/x", **can_run)``; a Controller or Router may
#: set ``opt = admin_only`` for all its routes.
can_read: Final[dict[str, Any]] = {"permission": "read"}
can_see_results: Final[dict[str, Any]] = {"permission": "results"}
can_run: Final[dict[str, Any]] = {"permission": "run"}
can_write: Final[dict[str, Any]] = {"permission": "write"}
can_manage_account: Final[dict[str, Any]] = {"permission": "account"}
admin_only: Final[dict[str, Any]] = {"permission": "admin"}


def check_role(value: str) -> Role:
    """``value`` as a role; 422 naming the field otherwise."""
    if value not in ROLES:
        raise Invalid("invalid role", [{"field": "role", "message": f"one of {', '.join(ROLES)}"}])
    return value


def check_scope(value: str) -> Scope:
    """``value`` as a token scope; 422 naming the field otherwise."""
    if value not in SCOPES:
        raise Invalid("invalid scope", [{"field": "scope", "message": f"one of {', '.join(SCOPES)}"}])
    return value
