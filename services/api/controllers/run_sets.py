"""``/api/v1/run-sets``: start a tag-wide run (a CI gate) and poll it by id."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from services.api import run_sets
from services.api.checks import CheckStore
from services.api.controllers.shapes import RunSetOut, declared
from services.api.errors import ApiError
from services.api.permissions import can_run, can_see_results


class RunSetsController(Controller):
    """Run sets, by id."""

    path = "/api/v1/run-sets"

    @post("/", status_code=202, **can_run)
    async def start_run_set(self, request: Request[Any, Any, Any]) -> Response[RunSetOut]:
        """Run every check with ``tag`` now from each of its regions (or only ``regions``); 202 with the
        id to poll."""
        try:
            body = await request.json()
        except Exception:
            raise ApiError(
                400, "the body is not valid JSON", [{"field": "body", "message": "not JSON"}]
            ) from None
        tag, regions = run_sets.parse_request(body)
        state = request.app.state
        run_set = await run_sets.start(CheckStore(state.sessions, state.bus), tag, regions)
        return Response(declared(RunSetOut, await run_sets.report(state.sessions, run_set)), status_code=202)

    @get("/{run_set_id:uuid}", **can_see_results)
    async def get_run_set(
        self, request: Request[Any, Any, Any], run_set_id: FromPath[uuid.UUID]
    ) -> RunSetOut:
        """The set's runs so far and its state (``running`` / ``passed`` / ``failed`` / ``error``)."""
        sessions = request.app.state.sessions
        return declared(RunSetOut, await run_sets.report(sessions, await run_sets.load(sessions, run_set_id)))
