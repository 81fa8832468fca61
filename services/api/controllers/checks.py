"""``/api/v1/checks``: create, read, update, delete, pause, run now, and list a check's runs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, QueryParameter

from services.api.checks import CheckStore, check_view, parse_spec
from services.api.controllers.shapes import (
    CheckName,
    CheckOut,
    CheckPage,
    Paused,
    Resumed,
    RunNow,
    RunOut,
    RunPage,
    TagList,
    declared,
)
from services.api.errors import ApiError
from services.api.permissions import can_run, can_see_results
from services.api.queries import list_runs, parse_cursor, run_cursor, run_view
from services.common.db.models import Check, Run
from services.common.errors import Invalid
from services.common.secretbox import Sealer


def _store(request: Request[Any, Any, Any]) -> CheckStore:
    state = request.app.state
    return CheckStore(state.sessions, state.bus, state.secretbox)


async def _json(request: Request[Any, Any, Any]) -> Any:
    try:
        return await request.json()
    except Exception:
        raise ApiError(
            400, "the body is not valid JSON", [{"field": "body", "message": "not JSON"}]
        ) from None


async def _bulk(
    request: Request[Any, Any, Any], tag: str | None, *, enabled: bool
) -> tuple[str, list[CheckName]]:
    if not tag:
        raise Invalid(
            "say which checks: ?tag=<tag>",
            [{"field": "tag", "message": "required"}],
        )
    changed = await _store(request).set_enabled_by_tag(tag, enabled)
    return tag, [{"id": str(row.id), "name": row.name} for row in changed]


def _check(row: Check, box: Sealer | None) -> CheckOut:
    return declared(CheckOut, check_view(row, box))


def _run(row: Run) -> RunOut:
    return declared(RunOut, run_view(row))


class TagsController(Controller):
    """Tags in use."""

    path = "/api/v1/tags"

    @get("/")
    async def list_tags(self, request: Request[Any, Any, Any]) -> TagList:
        """Every tag with how many checks carry it."""
        return {"items": [{"tag": tag, "checks": count} for tag, count in await _store(request).tags()]}


class ChecksController(Controller):
    """Checks, by id."""

    path = "/api/v1/checks"

    @get("/", **can_see_results)
    async def list_checks(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        tag: FromQuery[str | None] = None,
    ) -> CheckPage:
        """All checks (``?tag=`` only those carrying that tag), by name."""
        rows, total = await _store(request).page(limit=limit, offset=offset, tag=tag or None)
        return {
            "items": [_check(row, request.app.state.secretbox) for row in rows],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    @post("/pause", status_code=200)
    async def pause_tagged(
        self, request: Request[Any, Any, Any], tag: FromQuery[str | None] = None
    ) -> Paused:
        """Pause every check tagged ``?tag=``; lists the checks that were running."""
        tag, changed = await _bulk(request, tag, enabled=False)
        return {"tag": tag, "paused": changed}

    @post("/resume", status_code=200)
    async def resume_tagged(
        self, request: Request[Any, Any, Any], tag: FromQuery[str | None] = None
    ) -> Resumed:
        """Resume every check tagged ``?tag=``; lists the checks that were paused."""
        tag, changed = await _bulk(request, tag, enabled=True)
        return {"tag": tag, "resumed": changed}

    @post("/", status_code=201)
    async def create_check(self, request: Request[Any, Any, Any]) -> CheckOut:
        """Create a check from a ``CheckSpec`` body; 422 names each invalid field."""
        spec = parse_spec(await _json(request), box=request.app.state.secretbox)
        return _check(await _store(request).create(spec), request.app.state.secretbox)

    @get("/{check_id:uuid}", **can_see_results)
    async def get_check(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> CheckOut:
        """One check (secrets masked)."""
        return _check(await _store(request).get(check_id), request.app.state.secretbox)

    @put("/{check_id:uuid}")
    async def update_check(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> CheckOut:
        """Replace a check's configuration; masked secrets keep their stored values."""
        data = await _json(request)
        box = request.app.state.secretbox
        row = await _store(request).revise(check_id, lambda current: parse_spec(data, current.spec, box))
        return _check(row, box)

    @delete("/{check_id:uuid}", status_code=204)
    async def delete_check(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> None:
        """Delete a check."""
        await _store(request).delete(check_id)

    @post("/{check_id:uuid}/pause", status_code=200)
    async def pause_check(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> CheckOut:
        """Stop scheduling a check (its configuration stays)."""
        return _check(await _store(request).set_enabled(check_id, False), request.app.state.secretbox)

    @post("/{check_id:uuid}/resume", status_code=200)
    async def resume_check(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> CheckOut:
        """Schedule a paused check again."""
        return _check(await _store(request).set_enabled(check_id, True), request.app.state.secretbox)

    @post(
        "/{check_id:uuid}/runs",
        status_code=202,
        responses={200: ResponseSpec(RunNow, description="With ?wait=true: every run stored in time")},
        **can_run,
    )
    async def run_check_now(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID], wait: FromQuery[bool] = False
    ) -> Response[RunNow]:
        """Run now from every region; with ``?wait=true`` wait up to timeout + 5 s for the results."""
        store = _store(request)
        row = await store.get(check_id)
        slot, run_ids = await store.run_now(row)
        body: RunNow = {
            "slot": slot.isoformat().replace("+00:00", "Z"),
            "run_ids": [str(run_id) for run_id in run_ids],
        }
        if not wait:
            return Response(body, status_code=202)
        runs = await store.wait_for_runs(run_ids, float(row.spec.get("timeout", 10)) + 5.0)
        done = {run.run_id for run in runs}
        body["runs"] = [_run(run) for run in runs]
        body["pending"] = [str(run_id) for run_id in run_ids if run_id not in done]
        return Response(body, status_code=200 if not body["pending"] else 202)

    @get("/{check_id:uuid}/runs", **can_see_results)
    async def list_check_runs(
        self,
        request: Request[Any, Any, Any],
        check_id: FromPath[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        region: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> RunPage:
        """A check's runs, newest first; filter by region and status (comma-separated). For deep pages
        pass the previous page's ``next_before`` as ``before`` (a keyset cursor, as fast as page one)
        instead of a large ``offset``."""
        cursor = parse_cursor(before, "before")
        await _store(request).get(check_id)
        rows = await list_runs(
            request.app.state.reads,
            check_id,
            limit=limit,
            offset=offset,
            region=region,
            status=status,
            before=cursor,
        )
        return {
            "items": [_run(row) for row in rows],
            "limit": limit,
            "offset": offset,
            "next_before": run_cursor(rows[-1]) if len(rows) == limit else None,
        }
