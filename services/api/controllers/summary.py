"""``/api/v1/checks/{id}/summary|chart|incidents``: what the check detail page shows, as JSON."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, QueryParameter

from services.api import stats
from services.api.checks import CheckStore
from services.api.controllers.shapes import Chart, IncidentOut, IncidentPage, Summary, declared
from services.common.db import incidents

Window = Literal["1h", "24h", "7d", "30d"]


async def _over_window(
    request: Request[Any, Any, Any], check_id: uuid.UUID, window: str, compute: Callable[..., Awaitable[Any]]
) -> dict[str, Any]:
    """Run ``compute`` (a summary or chart of ``stats``) for one check over ``window``; 404 if no check."""
    state = request.app.state
    row = await CheckStore(state.reads, state.bus).get(check_id)
    result: dict[str, Any] = await compute(
        state.reads,
        check_id,
        window=window,
        interval=row.spec.get("interval", 60),
        regions=row.spec.get("regions", []),
    )
    return result


class CheckSummaryController(Controller):
    """Per-check summaries, chart series and incidents."""

    path = "/api/v1/checks"

    @get("/{check_id:uuid}/summary")
    async def check_summary(
        self,
        request: Request[Any, Any, Any],
        check_id: FromPath[uuid.UUID],
        window: FromQuery[Window] = "24h",
    ) -> Summary:
        """Availability, assertion pass rate, failures, p50/p95 over a window: overall and per region."""
        return declared(Summary, await _over_window(request, check_id, window, stats.summary))

    @get("/{check_id:uuid}/chart")
    async def check_chart(
        self,
        request: Request[Any, Any, Any],
        check_id: FromPath[uuid.UUID],
        window: FromQuery[Window] = "24h",
    ) -> Chart:
        """Response time per region: per run for short windows, hourly means for long ones."""
        return declared(Chart, await _over_window(request, check_id, window, stats.chart))

    @get("/{check_id:uuid}/incidents")
    async def check_incidents(
        self,
        request: Request[Any, Any, Any],
        check_id: FromPath[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> IncidentPage:
        """A check's incidents, newest first."""
        state = request.app.state
        await CheckStore(state.sessions, state.bus).get(check_id)
        items = await incidents.list_incidents(state.sessions, check_id=check_id, limit=limit, offset=offset)
        return {"items": [declared(IncidentOut, item) for item in items], "limit": limit, "offset": offset}
