"""``/api/v1/checks``: create, read, update, delete, pause, run now, and list a check's runs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from services.api.checks import CheckStore, check_view, parse_spec
from services.api.errors import ApiError
from services.api.permissions import can_run, can_see_results
from services.api.queries import list_runs, parse_cursor, run_cursor, run_view
from services.common.errors import Invalid


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


async def _bulk(request: Request[Any, Any, Any], tag: str | None, *, enabled: bool) -> dict[str, Any]:
    if not tag:
        raise Invalid(
            "say which checks: ?tag=<tag>",
            [{"field": "tag", "message": "required"}],
        )
    changed = await _store(request).set_enabled_by_tag(tag, enabled)
    key = "resumed" if enabled else "paused"
    return {"tag": tag, key: [{"id": str(row.id), "name": row.name} for row in changed]}


class TagsController(Controller):
    """Tags in use."""

    path = "/api/v1/tags"

    @get("/")
    async def list_tags(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
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
    ) -> dict[str, Any]:
        """All checks (``?tag=`` only those carrying that tag), by name."""
        rows, total = await _store(request).page(limit=limit, offset=offset, tag=tag or None)
        return {"items": [check_view(row) for row in rows], "total": total, "limit": limit, "offset": offset}

    @post("/pause", status_code=200)
    async def pause_tagged(
        self, request: Request[Any, Any, Any], tag: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        """Pause every check tagged ``?tag=``; lists the checks that were running."""
        return await _bulk(request, tag, enabled=False)

    @post("/resume", status_code=200)
    async def resume_tagged(
        self, request: Request[Any, Any, Any], tag: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        """Resume every check tagged ``?tag=``; lists the checks that were paused."""
        return await _bulk(request, tag, enabled=True)

    @post("/", status_code=201)
    async def create_check(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Create a check from a ``CheckSpec`` body; 422 names each invalid field."""
        spec = parse_spec(await _json(request), box=request.app.state.secretbox)
        return check_view(await _store(request).create(spec))

    @get("/{check_id:uuid}", **can_see_results)
    async def get_check(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        """One check (secrets masked)."""
        return check_view(await _store(request).get(check_id))

    @put("/{check_id:uuid}")
    async def update_check(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        """Replace a check's configuration; masked secrets keep their stored values."""
        store = _store(request)
        current = await store.get(check_id)
        spec = parse_spec(await _json(request), current.spec, request.app.state.secretbox)
        return check_view(await store.update(check_id, spec))

    @delete("/{check_id:uuid}", status_code=204)
    async def delete_check(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> None:
        """Delete a check."""
        await _store(request).delete(check_id)

    @post("/{check_id:uuid}/pause", status_code=200)
    async def pause_check(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        """Stop scheduling a check (its configuration stays)."""
        return check_view(await _store(request).set_enabled(check_id, False))

    @post("/{check_id:uuid}/resume", status_code=200)
    async def resume_check(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        """Schedule a paused check again."""
        return check_view(await _store(request).set_enabled(check_id, True))

    @post("/{check_id:uuid}/runs", **can_run)
    async def run_check_now(
        self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID], wait: FromQuery[bool] = False
    ) -> Response[dict[str, Any]]:
        """Run now from every region; with ``?wait=true`` wait up to timeout + 5 s for the results."""
        store = _store(request)
        row = await store.get(check_id)
        slot, run_ids = await store.run_now(row)
        body: dict[str, Any] = {
            "slot": slot.isoformat().replace("+00:00", "Z"),
            "run_ids": [str(run_id) for run_id in run_ids],
        }
        if not wait:
            return Response(body, status_code=202)
        runs = await store.wait_for_runs(run_ids, float(row.spec.get("timeout", 10)) + 5.0)
        done = {run.run_id for run in runs}
        body["runs"] = [run_view(run) for run in runs]
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
    ) -> dict[str, Any]:
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
            "items": [run_view(row) for row in rows],
            "limit": limit,
            "offset": offset,
            "next_before": run_cursor(rows[-1]) if len(rows) == limit else None,
        }
