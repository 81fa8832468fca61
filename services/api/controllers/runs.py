"""``/api/v1/runs``, ``/api/v1/regions``, ``/api/v1/incidents``: the read side."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, QueryParameter

from services.api.errors import ApiError
from services.api.queries import get_run, incident_view, list_incidents, regions, run_view


class RunsController(Controller):
    """Single runs by id."""

    path = "/api/v1/runs"

    @get("/{run_id:uuid}")
    async def get_run(self, request: Request[Any, Any, Any], run_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        """One run with its assertions, timings and response sample."""
        row = await get_run(request.app.state.sessions, run_id)
        if row is None:
            raise ApiError(404, f"no run with id {run_id}")
        return run_view(row)


class RegionsController(Controller):
    """Known regions and whether they have a live runner."""

    path = "/api/v1/regions"

    @get("/")
    async def list_regions(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Every region with its runners' health."""
        settings = request.app.state.settings
        items = await regions(
            request.app.state.sessions,
            stale_after=settings.runner_stale_after,
            dead_after=settings.runner_dead_after,
        )
        return {"items": items}


class IncidentsController(Controller):
    """Incidents, open and resolved."""

    path = "/api/v1/incidents"

    @get("/")
    async def list_incidents(
        self,
        request: Request[Any, Any, Any],
        incident_state: Annotated[Literal["open", "resolved"] | None, QueryParameter(name="state")] = None,
        check_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Incidents, newest first; filter by state and check."""
        rows = await list_incidents(
            request.app.state.sessions, state=incident_state, check_id=check_id, limit=limit, offset=offset
        )
        return {"items": [incident_view(row) for row in rows], "limit": limit, "offset": offset}
