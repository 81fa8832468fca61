"""Settings: users (admins manage them; everyone changes their own password), API tokens, regions, the global
alert defaults (policy and maintenance windows) and the deliveries that failed."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar import get as http_get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select

from contracts.v1.base import utcnow
from services.api.accounts import (
    ANY_OWNER,
    check_token_name,
    create_user,
    delete_user,
    list_tokens,
    list_users,
    revoke_token,
    set_password,
    set_role,
)
from services.api.auth import create_token
from services.api.errors import ApiError, status_of
from services.api.headers import NO_STORE
from services.api.permissions import ROLES, admin_only, can_manage_account, check_scope
from services.api.ui import alert_form
from services.api.ui.alert_form import AlertFields
from services.api.ui.form import CHANNELS, row_key
from services.api.ui.pages import global_alerts, region_cards, render
from services.api.ui.security import SESSION_COOKIE, current_user
from services.common.bus.dead_letters import count as count_dead_letters
from services.common.bus.dead_letters import walk as walk_dead_letters
from services.common.db.incidents import list_failed_notifications, save_global
from services.common.db.models import Check
from services.common.db.sessions import Sessions
from services.common.errors import DomainError

log = logging.getLogger(__name__)

FAILED_SHOWN = 50
#: Up to this many dead letters are walked to count them by reason when the page is shown.
DEAD_LETTERS_WALKED = 2000

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
        alerting: AlertFields | None = None,
        status_code: int = 200,
    ) -> Template:
        sessions = request.app.state.reads  # reads only: no transaction to open and roll back
        if alerting is None:
            policy, windows = await global_alerts(request)
            alerting = AlertFields.from_spec(
                {
                    "alert_policy": policy.model_dump(mode="json") if policy else None,
                    "maintenance": [window.model_dump(mode="json") for window in windows],
                },
                row_key,
            )
        user = current_user(request)
        users = await list_users(sessions)
        if not user.is_admin:
            users = [row for row in users if row.id == user.user_id]
        return render(
            request,
            "pages/settings.html",
            status_code=status_code,
            users=users,
            tokens=await list_tokens(sessions, owner=ANY_OWNER if user.is_admin else user.user_id),
            roles=ROLES,
            region_cards=await region_cards(request),
            stale_after=request.app.state.settings.runner_stale_after,
            errors=errors or {},
            new_token=new_token,
            message=message,
            alerting=alerting,
            alert_choices=alert_form,
            failed=await failed_deliveries(sessions),
            dead_letters=await dead_letter_summary(request) if user.is_admin else None,
        )

    @http_get("/")
    async def settings_page(self, request: Req, done: FromQuery[str | None] = None) -> Template:
        """Users, tokens and regions."""
        messages = {
            "user-created": "User created.",
            "user-removed": "User removed.",
            "password-changed": "Password changed. Other sessions were logged out.",
            "token-revoked": "Token revoked.",
            "role-changed": "Role changed.",
            "alerts-saved": "Global alert defaults saved.",
        }
        return await self._page(request, message=messages.get(done or ""))

    @post("/users", status_code=200, **admin_only)
    async def add_user(self, request: Req) -> Template | Redirect:
        """Create a user (admins only)."""
        data = await request.form()
        try:
            await create_user(
                request.app.state.sessions,
                _field(data, "username"),
                _field(data, "password"),
                role=_field(data, "role") or "editor",
            )
        except DomainError as exc:
            errors = {f"user_{item['field']}": item["message"] for item in exc.errors} or {
                "user_username": str(exc.detail)
            }
            return await self._page(request, errors=errors, status_code=422)
        return Redirect("/settings", query_params={"done": "user-created"}, status_code=303)

    @post("/users/{user_id:uuid}/role", status_code=200, **admin_only)
    async def change_role(self, request: Req, user_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Make a user an admin, editor or viewer (admins only; never the last admin away)."""
        data = await request.form()
        try:
            await set_role(request.app.state.sessions, user_id, _field(data, "role"))
        except DomainError as exc:
            return await self._page(request, errors={"users": str(exc.detail)}, status_code=status_of(exc))
        return Redirect("/settings", query_params={"done": "role-changed"}, status_code=303)

    @post("/users/{user_id:uuid}/delete", status_code=200, **admin_only)
    async def remove_user(self, request: Req, user_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Remove a user (admins only; never yourself, never the last admin)."""
        user = current_user(request)
        if user.user_id == user_id:
            return await self._page(request, errors={"users": "You cannot remove yourself."}, status_code=409)
        try:
            await delete_user(request.app.state.sessions, user_id)
        except DomainError as exc:
            return await self._page(request, errors={"users": str(exc.detail)}, status_code=status_of(exc))
        return Redirect("/settings", query_params={"done": "user-removed"}, status_code=303)

    @post("/users/{user_id:uuid}/password", status_code=200, **can_manage_account)
    async def change_password(self, request: Req, user_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Change a password: your own (with your current password), or anyone's as an admin. The user's
        other sessions end and their API tokens are revoked unless "keep my tokens" is ticked."""
        user = current_user(request)
        if not user.is_admin and user.user_id != user_id:
            raise ApiError(403, "you can only change your own password")
        data = await request.form()
        own = user.user_id == user_id
        try:
            revoked = await set_password(
                request.app.state.sessions,
                user_id,
                _field(data, "password"),
                current=_field(data, "current_password") if own else None,
                keep_session=request.cookies.get(SESSION_COOKIE) if own else None,
                keep_tokens=_field(data, "keep_tokens") == "on",
            )
        except DomainError as exc:
            message = exc.errors[0]["message"] if exc.errors else str(exc.detail)
            return await self._page(request, errors={f"password_{user_id}": message}, status_code=422)
        log.info("password changed user=%s by=%s tokens_revoked=%d", user_id, user.username, revoked)
        return Redirect("/settings", query_params={"done": "password-changed"}, status_code=303)

    @post("/tokens", status_code=200, **can_manage_account)
    async def add_token(self, request: Req) -> Template:
        """Create an API token of yours (acting with your role, or run-only) and show it, once."""
        data = await request.form()
        try:
            name = check_token_name(_field(data, "name"))
            scope = check_scope(_field(data, "scope") or "full")
        except DomainError as exc:
            field = exc.errors[0]["field"] if exc.errors else "name"
            return await self._page(
                request, errors={f"token_{field}": exc.errors[0]["message"]}, status_code=422
            )
        _, token = await create_token(
            request.app.state.sessions, name, current_user(request).user_id, scope=scope
        )
        page = await self._page(request, new_token=token, message=f"Token '{name}' created.")
        page.headers.update(NO_STORE)
        return page

    @post("/tokens/{token_id:uuid}/revoke", status_code=200, **can_manage_account)
    async def revoke(self, request: Req, token_id: FromPath[uuid.UUID]) -> Redirect:
        """Revoke an API token: your own, or anyone's as an admin."""
        user = current_user(request)
        await revoke_token(
            request.app.state.sessions, token_id, owner=ANY_OWNER if user.is_admin else user.user_id
        )
        return Redirect("/settings", query_params={"done": "token-revoked"}, status_code=303)

    @post("/alerts", status_code=200, **admin_only)
    async def save_alert_defaults(self, request: Req) -> Template | Redirect:
        """Save the global alert policy and maintenance windows (admins only)."""
        alerting = AlertFields.from_post(await request.form())
        policy, windows, errors = alerting.validate()
        if policy is None or windows is None:
            return await self._page(request, errors=errors, alerting=alerting, status_code=422)
        await save_global(request.app.state.sessions, policy=policy, maintenance=windows, now=utcnow())
        return Redirect("/settings", query_params={"done": "alerts-saved"}, status_code=303)


async def failed_deliveries(sessions: Sessions) -> list[dict[str, Any]]:
    """The newest notifications given up on, each with its check's name and channel label."""
    items = await list_failed_notifications(sessions, limit=FAILED_SHOWN)
    ids = {uuid.UUID(item["check_id"]) for item in items}
    names: dict[str, str] = {}
    if ids:
        async with sessions() as session:
            rows = await session.execute(select(Check.id, Check.name).where(Check.id.in_(ids)))
            names = {str(check_id): name for check_id, name in rows}
    for item in items:
        item["check_name"] = names.get(item["check_id"])
        item["channel_label"] = CHANNELS.get(item["channel"], item["channel"])
        log = item.get("attempt_log") or []
        item["last_attempt_at"] = log[-1].get("at") if log else item["created_at"]
    return items


async def dead_letter_summary(request: Req) -> dict[str, Any] | None:
    """How many dead letters wait, and (when there are few enough to walk) by reason and by queue;
    ``None`` when the app has no bus to ask."""
    broker_url: str = request.app.state.settings.broker_url
    rabbit = broker_url.startswith("amqp")
    counter = (
        (lambda: count_dead_letters(broker_url))
        if rabbit
        else getattr(request.app.state.bus, "dead_letter_count", None)
    )
    if counter is None:
        return None
    try:
        total = int(await counter())
    except Exception as exc:
        return {"error": f"the broker could not be asked ({type(exc).__name__})"}
    summary: dict[str, Any] = {"total": total, "by_reason": [], "by_queue": []}
    if 0 < total <= DEAD_LETTERS_WALKED and rabbit:
        try:
            seen = await walk_dead_letters(broker_url, lambda _letter: "keep")
        except Exception as exc:
            return {**summary, "error": f"the dead letters could not be read ({type(exc).__name__})"}
        summary["by_reason"] = seen.by_reason.most_common()
        summary["by_queue"] = seen.by_queue.most_common()
    return summary
