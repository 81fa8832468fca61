"""Alerting in the API: incidents with their notifications, failed deliveries, test notifications,
global alert settings, and the Prometheus metrics."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, MediaType, Request, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from contracts.v1 import AlertPolicy
from contracts.v1.base import utcnow
from services.api.alert_settings import ABSENT, parse_alert_settings
from services.api.controllers.shapes import (
    AlertSettingsOut,
    FailedNotification,
    FailedNotifications,
    IncidentOut,
    IncidentPage,
    TestSent,
    declared,
)
from services.api.errors import ApiError
from services.api.permissions import admin_only, caller_id
from services.common import metrics
from services.common.channels.probe import TooSoon, send_test_notification
from services.common.db import incidents
from services.common.db.sessions import Sessions
from services.common.errors import Invalid, NotFound

log = logging.getLogger(__name__)


class IncidentsController(Controller):
    """Incidents, open and resolved, with every notification attempt."""

    path = "/api/v1/incidents"

    @get("/")
    async def list_incidents(
        self,
        request: Request[Any, Any, Any],
        incident_state: Annotated[Literal["open", "resolved"] | None, QueryParameter(name="state")] = None,
        check_id: FromQuery[uuid.UUID | None] = None,
        notifications: FromQuery[bool] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> IncidentPage:
        """Incidents, newest first; filter by state and check; ``notifications=true`` adds attempts."""
        items = await incidents.list_incidents(
            request.app.state.sessions,
            state=incident_state,
            check_id=check_id,
            limit=limit,
            offset=offset,
            with_notifications=notifications,
        )
        return {"items": [declared(IncidentOut, item) for item in items], "limit": limit, "offset": offset}

    @get("/{incident_id:uuid}")
    async def get_incident(
        self, request: Request[Any, Any, Any], incident_id: FromPath[uuid.UUID]
    ) -> IncidentOut:
        """One incident with every notification attempt."""
        found = await incidents.get_incident(request.app.state.sessions, incident_id)
        if found is None:
            raise NotFound(f"no incident with id {incident_id}")
        return declared(IncidentOut, found)


class NotificationsController(Controller):
    """Deliveries that were given up on, and test notifications."""

    path = "/api/v1"

    @get("/notifications/failed")
    async def failed_notifications(
        self,
        request: Request[Any, Any, Any],
        check_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> FailedNotifications:
        """Notifications that could not be delivered, newest first."""
        items = await incidents.list_failed_notifications(
            request.app.state.sessions, check_id=check_id, limit=limit
        )
        return {"items": [declared(FailedNotification, item) for item in items]}

    @post("/checks/{check_id:uuid}/alerts/{index:int}/test", status_code=200)
    async def test_notification(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID], index: FromPath[int]
    ) -> TestSent:
        """Send a test message to one of a check's alert channels now, and say how it went."""
        state = request.app.state
        try:
            sent = await send_test_notification(
                state.sessions,
                state.settings,
                check_id,
                index,
                limiter=state.test_sends,
                who=caller_id(request) or "token",
                box=state.secretbox,
            )
        except TooSoon as exc:
            raise ApiError(429, str(exc), headers={"Retry-After": f"{math.ceil(exc.retry_after)}"}) from None
        return declared(TestSent, sent)


class AlertSettingsController(Controller):
    """The global alert policy and maintenance windows (a check's own settings take precedence)."""

    path = "/api/v1/settings/alerts"

    @get("/")
    async def get_alert_settings(self, request: Request[Any, Any, Any]) -> AlertSettingsOut:
        """The global policy (defaults when unset) and global maintenance windows."""
        return await _alert_settings(request.app.state.sessions)

    @put("/", **admin_only)
    async def put_alert_settings(self, request: Request[Any, Any, Any]) -> AlertSettingsOut:
        """Replace the global policy and/or maintenance windows; 422 names each invalid field."""
        try:
            body = await request.json()
        except Exception:
            raise ApiError(
                400, "the body is not valid JSON", [{"field": "body", "message": "not JSON"}]
            ) from None
        if not isinstance(body, dict):
            raise Invalid("expected an object", [{"field": "body", "message": "expected an object"}])
        policy, windows, errors = parse_alert_settings(
            body.get("alert_policy", ABSENT), body.get("maintenance", ABSENT)
        )
        if errors:
            raise Invalid("invalid alert settings: " + ", ".join(e["field"] for e in errors), errors)
        await incidents.save_global(
            request.app.state.sessions, policy=policy, maintenance=windows, now=utcnow()
        )
        return await _alert_settings(request.app.state.sessions)


async def _alert_settings(sessions: Sessions) -> AlertSettingsOut:
    async with sessions() as session:
        policy, windows = await incidents.load_global(session)
    return {
        "alert_policy": (policy or AlertPolicy()).model_dump(mode="json"),
        "maintenance": [window.model_dump(mode="json") for window in windows],
    }


@get("/metrics", media_type=MediaType.TEXT)
async def prometheus_metrics(request: Request[Any, Any, Any]) -> str:
    """Prometheus text: this process's counters, incident and notification counts from the db, and how
    many messages wait in the dead-letter queue (nothing is dropped silently; it must be visible)."""
    state = request.app.state
    text = metrics.render_metrics() + await metrics.render_stored_metrics(state.sessions)
    counter = getattr(state.bus, "dead_letter_count", None)
    if counter is not None:
        try:
            waiting = await counter()
        except Exception:  # the broker being away must not take the metrics page down with it
            log.warning("could not read the dead-letter queue depth")
        else:
            text += (
                "# HELP seymour_dead_letters Messages waiting in the dead-letter queue.\n"
                "# TYPE seymour_dead_letters gauge\n"
                f"seymour_dead_letters {waiting}\n"
            )
    return text
