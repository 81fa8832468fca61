"""``/api/v1/runs`` and ``/api/v1/regions``: the read side."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath

from services.api.controllers.shapes import RegionList, RegionOut, RunOut, declared
from services.api.permissions import can_see_results
from services.api.queries import get_run, regions, run_view
from services.common.errors import NotFound


class RunsController(Controller):
    """Single runs by id."""

    path = "/api/v1/runs"

    @get("/{run_id:uuid}", **can_see_results)
    async def get_run(self, request: Request[Any, Any, Any], run_id: FromPath[uuid.UUID]) -> RunOut:
        """One run with its assertions, timings and response sample."""
        row = await get_run(request.app.state.reads, run_id)
        if row is None:
            raise NotFound(f"no run with id {run_id}")
        return declared(RunOut, run_view(row))


class RegionsController(Controller):
    """Known regions and whether they have a live runner."""

    path = "/api/v1/regions"

    @get("/", **can_see_results)
    async def list_regions(self, request: Request[Any, Any, Any]) -> RegionList:
        """Every region with its runners' health."""
        settings = request.app.state.settings
        items = await regions(
            request.app.state.sessions,
            stale_after=settings.runner_stale_after,
            dead_after=settings.runner_dead_after,
        )
        return {"items": [declared(RegionOut, item) for item in items]}
