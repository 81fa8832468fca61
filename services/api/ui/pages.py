"""Check pages: the checks table, the create/edit form, check detail, runs and run detail.

Every state change goes through :class:`services.api.checks.CheckStore`, the same as the REST API.
A request from htmx gets the fragment it swaps in; a plain browser request gets a page or a redirect.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Annotated, Any, Final
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from contracts.v1.checks import AlertPolicy, CheckSpec
from contracts.v1.regions import REGIONS
from services.api import badges, stats
from services.api.checks import CheckStore, check_view
from services.api.permissions import can_run, can_write, has
from services.api.queries import get_run, list_runs, parse_cursor, regions, run_cursor
from services.api.ui import alert_form
from services.api.ui import form as check_form
from services.api.ui.alert_form import MaintenanceRow, describe_policy, describe_window
from services.api.ui.check_rows import RowCache, row_html
from services.api.ui.form import AssertionRow, ChannelRow, CheckForm, HeaderRow, row_key
from services.api.ui.security import current_user, is_htmx
from services.api.ui.spliced import SplicedTemplate
from services.api.ui.steps_form import ExtractRow, StepCard
from services.api.ui.views import (
    channel_views,
    check_row,
    delivery_text,
    notification_summary,
    run_detail,
    run_line,
)
from services.common.channels.probe import TooSoon, send_test_notification
from services.common.db.incidents import effective_policy, list_incidents, load_global
from services.common.db.models import Check, CheckBadge
from services.common.db.sessions import Sessions
from services.common.errors import DomainError, Invalid, NotFound

RUNS_PER_PAGE: Final = 50
RESULT_FILTERS: Final = {"passed": "passed", "failed": "failed,error", "missed": "missed"}

Req = Request[Any, Any, Any]


def render(request: Req, template: str, *, status_code: int = 200, **context: Any) -> Template:
    """A template with what every page needs: the user and the CSRF token."""
    user = current_user(request)
    return Template(
        template_name=template,
        context={"user": user, "csrf": user.csrf_token, "request_path": request.url.path, **context},
        status_code=status_code,
    )


def table_page(request: Req, template: str, table: dict[str, Any], **context: Any) -> SplicedTemplate:
    """A page (or the partial) with the checks table of :func:`checks_table`: its lines, kept encoded,
    go into the body as they are."""
    user = current_user(request)
    return SplicedTemplate(
        template_name=template,
        lines=table["lines"],
        context={"user": user, "csrf": user.csrf_token, "request_path": request.url.path, **table, **context},
    )


def store_of(request: Req) -> CheckStore:
    """The check store of this app."""
    state = request.app.state
    return CheckStore(state.sessions, state.bus, state.secretbox)


def reader_of(request: Req) -> CheckStore:
    """The check store on read-only sessions (one round trip per read, no transaction around it): for
    its reads (``get``, ``page``, ``tags``) only, never its writes."""
    state = request.app.state
    return CheckStore(state.reads, state.bus, state.secretbox)


async def region_cards(request: Req) -> list[dict[str, Any]]:
    """Every region with its runners' health, regions with a live runner first."""
    settings = request.app.state.settings
    items = await regions(
        request.app.state.reads,
        stale_after=settings.runner_stale_after,
        dead_after=settings.runner_dead_after,
    )
    return sorted(
        items,
        key=lambda item: (
            not item["live"],
            list(REGIONS).index(item["code"]) if item["code"] in REGIONS else len(REGIONS),
        ),
    )


async def checks_table(request: Req, page: int, per_page: int, tag: str | None = None) -> dict[str, Any]:
    """The context of the checks table: one page of checks (only those tagged ``tag`` when given)
    with their last three runs and incidents.

    The page's line versions come first (what the poll's ETag is made of); only lines not already
    drawn for their version are read in full (spec fields, runs, incident) and drawn. Between two
    draws most lines are unchanged, so a redraw of 1,000 lines reads and draws a handful."""
    sessions = request.app.state.reads
    total, versions = await stats.table_versions(
        sessions, limit=per_page, offset=(page - 1) * per_page, tag=tag
    )
    may_run, may_write = has(request, "run"), has(request, "write")
    cache: RowCache = request.app.state.row_cache
    lines = {check_id: cache.get((version, may_run, may_write)) for check_id, version in versions}
    missing = [check_id for check_id, line in lines.items() if line is None]
    if missing:
        rows = await stats.table_rows(sessions, missing)
        marks = await stats.latest_runs(sessions, list(rows))
        incidents = await stats.open_incidents(sessions, list(rows))
        for check_id, version in versions:
            row = rows.get(check_id)
            if lines[check_id] is not None or row is None:  # drawn already, or deleted meanwhile
                continue
            drawn = row_html(check_row(row, marks[check_id], incidents.get(check_id)), may_run, may_write)
            line = str(drawn).encode()
            cache.put((version, may_run, may_write), line)
            lines[check_id] = line
    return {
        "lines": [line for line in lines.values() if line is not None],
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, -(-total // per_page)),
        "tag": tag or "",
        "etag": table_etag(current_user(request), page, per_page, tag, total, versions),
    }


async def current_table_etag(request: Req, page: int, per_page: int, tag: str | None) -> str:
    """The ETag the checks table would be drawn with now, from the versions alone (no spec, no
    drawing): equal to the drawn table's when nothing it shows has changed."""
    total, versions = await stats.table_versions(
        request.app.state.reads, limit=per_page, offset=(page - 1) * per_page, tag=tag
    )
    return table_etag(current_user(request), page, per_page, tag, total, versions)


def table_etag(
    user: Any,
    page: int,
    per_page: int,
    tag: str | None,
    total: int,
    versions: list[tuple[uuid.UUID, stats.RowVersion]],
) -> str:
    """A fingerprint of everything the checks table shows (and of who sees it: actions depend on the
    role, forms carry the session's CSRF token), so a poll that would redraw the same table gets a 304.
    Each line is drawn from its check's revision, its newest runs and its open incident only
    (:func:`stats.row_version`)."""
    digest = hashlib.blake2b(digest_size=12)
    head = (user.user_id, user.role, user.csrf_token, page, per_page, tag or "", total)
    digest.update(repr(head).encode())
    digest.update("\n".join([version for _, version in versions]).encode())
    return f'W/"{digest.hexdigest()}"'


async def form_page(
    request: Req,
    form: CheckForm,
    *,
    check: dict[str, Any] | None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The create/edit page for ``form``."""
    return render(
        request,
        "pages/check_form.html",
        status_code=status_code,
        form=form,
        check=check,
        errors=errors or {},
        region_cards=await region_cards(request),
        choices=check_form,
        alert_choices=alert_form,
    )


async def global_alerts(request: Req) -> tuple[AlertPolicy | None, tuple[Any, ...]]:
    """The global alert policy (``None`` when never set) and global maintenance windows."""
    async with request.app.state.reads() as session:
        return await load_global(session)


def policy_source(own: AlertPolicy, global_policy: AlertPolicy | None) -> str:
    """Where the policy in force comes from, as the check page says it."""
    if own == AlertPolicy():
        return "global defaults" if global_policy else "defaults"
    return "this check, global defaults for the rest" if global_policy else "this check"


async def alerts_card(request: Req, row: Check, view: dict[str, Any]) -> dict[str, Any]:
    """The check page's Alerts card: channels, the policy in force, and the maintenance windows."""
    spec = CheckSpec.model_validate(row.spec)
    global_policy, global_windows = await global_alerts(request)
    policy = effective_policy(spec.alert_policy, global_policy)
    return {
        "channels": channel_views(view.get("alerts") or []),
        "policy": describe_policy(policy, len(spec.regions)),
        "policy_source": policy_source(spec.alert_policy, global_policy),
        "windows": [
            *({"text": describe_window(w), "scope": "this check"} for w in spec.maintenance),
            *({"text": describe_window(w), "scope": "global"} for w in global_windows),
        ],
    }


async def check_and_badge(sessions: Sessions, check_id: uuid.UUID) -> tuple[Check, str | None]:
    """A check (404 when there is none) and its badge token if one was made, in one statement: each
    round trip to the database is a large share of a page's cost on a busy machine."""
    async with sessions() as session:
        found = (
            await session.execute(
                select(Check, CheckBadge.token)
                .outerjoin(CheckBadge, CheckBadge.check_id == Check.id)
                .where(Check.id == check_id)
            )
        ).first()
    if found is None:
        raise NotFound(f"no check with id {check_id}")
    return found[0], found[1]


class _FormErrors(Exception):
    """The posted form does not make a valid check: raised inside the edit's transaction (which it
    rolls back) with the stored check the form is shown again for."""

    def __init__(self, current: Check, errors: dict[str, str]) -> None:
        super().__init__("invalid check form")
        self.current = current
        self.errors = errors


class CheckPages(Controller):
    """Checks: table, form, detail, runs."""

    path = "/"
    include_in_schema = False

    @get("/")
    async def home(
        self,
        request: Req,
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        tag: FromQuery[str | None] = None,
    ) -> Template:
        """The checks table, filtered by ``?tag=``."""
        context = await checks_table(request, page, per_page, tag or None)
        return table_page(request, "pages/checks.html", context, tags=await reader_of(request).tags())

    @get("/partials/checks")
    async def checks_partial(
        self,
        request: Req,
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        tag: FromQuery[str | None] = None,
    ) -> Template | Response[bytes]:
        """The checks table alone (polled by the home page every few seconds). Answers 304 when the
        table would be the same as the one the browser has (``If-None-Match``), known from narrow reads
        of versions (one session, three statements) without loading or drawing the table."""
        known = [
            value.strip() for value in request.headers.get("if-none-match", "").split(",") if value.strip()
        ]
        if known:
            etag = await current_table_etag(request, page, per_page, tag or None)
            if etag in known:
                headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
                return Response(b"", status_code=304, headers=headers)
        context = await checks_table(request, page, per_page, tag or None)
        headers = {"ETag": context["etag"], "Cache-Control": "private, no-cache"}
        template = table_page(request, "partials/checks_table.html", context)
        template.headers.update(headers)
        return template

    @post("/checks/tagged/pause", status_code=200)
    async def pause_tagged(self, request: Req) -> Redirect:
        """Pause every check with the posted tag, then show that tag's table."""
        return await self._set_enabled_by_tag(request, False)

    @post("/checks/tagged/resume", status_code=200)
    async def resume_tagged(self, request: Req) -> Redirect:
        """Resume every check with the posted tag, then show that tag's table."""
        return await self._set_enabled_by_tag(request, True)

    async def _set_enabled_by_tag(self, request: Req, enabled: bool) -> Redirect:
        tag = (await request.form()).get("tag")
        if not isinstance(tag, str) or not tag.strip():
            raise Invalid("choose a tag", [{"field": "tag", "message": "required"}])
        await store_of(request).set_enabled_by_tag(tag.strip(), enabled)
        return Redirect(f"/?tag={quote(tag.strip())}", status_code=303)

    @get("/checks/new", **can_write)
    async def new_check(self, request: Req) -> Template:
        """An empty check form."""
        return await form_page(request, CheckForm.blank(default_regions=[]), check=None)

    @post("/checks", status_code=200)
    async def create_check(self, request: Req) -> Template | Redirect:
        """Create a check from the form, or show the form again with each error beside its field."""
        form = CheckForm.from_post(await request.form())
        spec, errors = form.validate(None, request.app.state.secretbox)
        if spec is not None:
            try:
                row = await store_of(request).create(spec)
            except DomainError as exc:
                errors = {
                    "name" if item["field"] == "name" else "general": item["message"] for item in exc.errors
                }
                errors = errors or {"general": str(exc.detail)}
            else:
                return Redirect(f"/checks/{row.id}", status_code=303)
        return await form_page(request, form, check=None, errors=errors, status_code=422)

    @get("/checks/{check_id:uuid}/edit", **can_write)
    async def edit_check(self, request: Req, check_id: FromPath[uuid.UUID]) -> Template:
        """The form of an existing check (secrets masked; left masked, they stay unchanged)."""
        view = check_view(await reader_of(request).get(check_id), request.app.state.secretbox)
        return await form_page(request, CheckForm.from_spec(view), check=view)

    @post("/checks/{check_id:uuid}", status_code=200)
    async def update_check(self, request: Req, check_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Save a new revision from the form, or show the form again with each error beside its field.

        The form is checked against the stored check inside the write's transaction (masked secrets
        are kept from it): one session and one locked read instead of a read apart, then a write."""
        store = store_of(request)
        form = CheckForm.from_post(await request.form())
        box = request.app.state.secretbox

        def revised(current: Check) -> CheckSpec:
            spec, errors = form.validate(current.spec, box)
            if spec is None:
                raise _FormErrors(current, errors)
            return spec

        try:
            await store.revise(check_id, revised)
        except _FormErrors as exc:
            current, errors = exc.current, exc.errors
        except DomainError as exc:
            errors = {
                "name" if item["field"] == "name" else "general": item["message"] for item in exc.errors
            }
            errors = errors or {"general": str(exc.detail)}
            current = await reader_of(request).get(check_id)
        else:
            return Redirect(f"/checks/{check_id}", status_code=303)
        return await form_page(request, form, check=check_view(current, box), errors=errors, status_code=422)

    @get("/checks/form/step-card")
    async def step_card(self, request: Req, teardown: FromQuery[str | None] = None) -> Template:
        """A new step card (a teardown step with ``teardown=1``), with one status assertion."""
        step = StepCard.blank(teardown=bool(teardown))
        step.assertions = [AssertionRow(row_key(), "status_code", "", "less_than", "400")]
        return render(request, "partials/step_card.html", step=step, errors={}, choices=check_form)

    @get("/checks/form/extract-row")
    async def extract_row(self, request: Req, group: FromQuery[str] = "first") -> Template:
        """A new extraction row for the first step (``group=first``) or a step card (``step-<key>``)."""
        return render(
            request,
            "partials/extract_row.html",
            extract=ExtractRow(row_key()),
            extract_group=group,
            choices=check_form,
        )

    @post("/checks/form/try", status_code=200)
    async def try_now(self, request: Req) -> Template:
        """Run the form once as it stands, without saving it, and show each step's outcome."""
        data = await request.form()
        store = store_of(request)
        stored: dict[str, Any] | None = None
        posted_id = data.get("check_id")
        if isinstance(posted_id, str) and posted_id:
            try:
                stored = (await reader_of(request).get(uuid.UUID(posted_id))).spec
            except (ValueError, DomainError):
                stored = None
        spec, errors = CheckForm.from_post(data).validate(stored, request.app.state.secretbox)
        if spec is None:
            return render(request, "partials/try_result.html", run=None, errors=errors, finished=False)
        run = await store.try_once(spec)
        view = run_detail(run) if run is not None else None
        return render(request, "partials/try_result.html", run=view, errors={}, finished=run is not None)

    @get("/checks/form/assertion-row")
    async def assertion_row(
        self, request: Req, key: FromQuery[str | None] = None, group: FromQuery[str] = ""
    ) -> Template:
        """One assertion row: new, or re-drawn after its source or comparison changed."""
        params = request.query_params
        if key:
            row = AssertionRow(
                key,
                params.get(f"assertion-{key}-source") or "status_code",
                params.get(f"assertion-{key}-property") or "",
                params.get(f"assertion-{key}-comparison") or "equals",
                params.get(f"assertion-{key}-target") or "",
            ).normalised()
        else:
            row = AssertionRow(row_key())
        return render(
            request, "partials/assertion_row.html", row=row, errors={}, choices=check_form, row_group=group
        )

    @get("/checks/form/header-row")
    async def header_row(self, request: Req) -> Template:
        """A new, empty header row."""
        return render(request, "partials/header_row.html", row=HeaderRow(row_key()), errors={})

    @get("/checks/form/channel-row")
    async def channel_row(self, request: Req, key: FromQuery[str | None] = None) -> Template:
        """One alert channel row: new, or re-drawn after its type changed."""
        params = request.query_params
        row = ChannelRow.from_post(params, key) if key else ChannelRow(row_key())
        return render(
            request,
            "partials/channel_row.html",
            row=row,
            errors={},
            choices=check_form,
            alert_choices=alert_form,
        )

    @get("/checks/form/maintenance-row")
    async def maintenance_row(self, request: Req, key: FromQuery[str | None] = None) -> Template:
        """One maintenance window row: new, or re-drawn after its kind (one-off/weekly) changed."""
        row = MaintenanceRow.from_post(request.query_params, key) if key else MaintenanceRow(row_key())
        return render(request, "partials/maintenance_row.html", row=row, errors={}, alert_choices=alert_form)

    @post("/checks/{check_id:uuid}/alerts/{index:int}/test", status_code=200)
    async def test_notification(
        self, request: Req, check_id: FromPath[uuid.UUID], index: FromPath[int]
    ) -> Template:
        """Send a test message to one channel of a check now; the fragment says how it went."""
        state = request.app.state
        try:
            result = await send_test_notification(
                state.sessions,
                state.settings,
                check_id,
                index,
                limiter=state.test_sends,
                who=current_user(request).user_id,
            )
        except TooSoon as exc:
            text = f"Not sent: too many test sends, try again in {math.ceil(exc.retry_after)} s"
            return render(request, "partials/test_result.html", ok=False, text=text)
        except NotFound:
            if not is_htmx(request):
                raise NotFound(f"check {check_id} has no alert channel {index}") from None
            result = {"ok": False, "error": "this channel no longer exists; reload the page"}
        return render(
            request, "partials/test_result.html", ok=bool(result.get("ok")), text=delivery_text(result)
        )

    @get("/checks/{check_id:uuid}")
    async def check_page(
        self, request: Req, check_id: FromPath[uuid.UUID], window: FromQuery[str] = stats.DEFAULT_WINDOW
    ) -> Template:
        """A check: summary over a window, chart, last runs, incidents."""
        sessions = request.app.state.reads
        row, badge_token = await check_and_badge(sessions, check_id)
        view = check_view(row, request.app.state.secretbox)
        if window not in stats.WINDOWS:
            window = stats.DEFAULT_WINDOW
        summary = await stats.summary(
            sessions, check_id, window=window, interval=view["interval"], regions=view["regions"]
        )
        incidents = await list_incidents(sessions, check_id=check_id, limit=5, with_notifications=True)
        for incident in incidents:
            incident["notification_summary"] = notification_summary(incident["notifications"])
        latest = await list_runs(sessions, check_id, limit=3)
        return render(
            request,
            "pages/check_detail.html",
            check=view,
            summary=summary,
            window=window,
            windows=list(stats.WINDOWS),
            incidents=incidents,
            latest=[run_line(run) for run in latest],
            alerts=await alerts_card(request, row, view),
            badge_token=badge_token,
            badge_kinds=badges.KINDS,
        )

    @post("/checks/{check_id:uuid}/badges", status_code=200)
    async def make_badges(self, request: Req, check_id: FromPath[uuid.UUID]) -> Redirect:
        """Make the check's badge token, or replace it (``rotate``: old badge URLs stop working)."""
        rotate = (await request.form()).get("rotate") == "on"
        await badges.token_for(request.app.state.sessions, check_id, rotate=rotate)
        cache = getattr(request.app.state, "status_cache", None)
        if cache is not None:
            cache.entries.clear()
        return Redirect(f"/checks/{check_id}#badges", status_code=303)

    @get("/checks/{check_id:uuid}/partials/latest")
    async def latest_partial(self, request: Req, check_id: FromPath[uuid.UUID]) -> Template:
        """The last three runs of a check (polled by the detail page)."""
        latest = await list_runs(request.app.state.reads, check_id, limit=3)
        return render(
            request,
            "partials/latest_runs.html",
            check={"id": str(check_id)},
            latest=[run_line(run) for run in latest],
        )

    @get("/checks/{check_id:uuid}/chart.json")
    async def chart_data(
        self,
        request: Req,
        check_id: FromPath[uuid.UUID],
        window: FromQuery[str] = stats.DEFAULT_WINDOW,
        step: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Response time per region (of the whole run, or of one ``step``), for the chart."""
        view = check_view(await reader_of(request).get(check_id), request.app.state.secretbox)
        return await stats.chart(
            request.app.state.reads,
            check_id,
            window=window,
            interval=view["interval"],
            regions=view["regions"],
            step=step or None,
        )

    @get("/checks/{check_id:uuid}/runs")
    async def runs_page(
        self,
        request: Req,
        check_id: FromPath[uuid.UUID],
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        region: FromQuery[str | None] = None,
        result: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        """All runs of a check, newest first, filtered by region and result; the pager's links carry
        keyset cursors (``before``/``after``), so deep pages cost what the first does."""
        view = check_view(await reader_of(request).get(check_id), request.app.state.secretbox)
        status = RESULT_FILTERS.get(result or "")
        older_than = parse_cursor(before, "before")
        newer_than = None if older_than else parse_cursor(after, "after")
        keyset = older_than is not None or newer_than is not None
        rows = await list_runs(
            request.app.state.reads,
            check_id,
            limit=RUNS_PER_PAGE + 1,
            offset=0 if keyset else (page - 1) * RUNS_PER_PAGE,
            region=region or None,
            status=status,
            before=older_than,
            after=newer_than,
        )
        more = len(rows) > RUNS_PER_PAGE
        if newer_than is not None:
            shown = rows[-RUNS_PER_PAGE:]
            has_newer, has_older = more, True
        else:
            shown = rows[:RUNS_PER_PAGE]
            has_newer, has_older = older_than is not None or page > 1, more
        if not has_newer:
            page = 1
        context: dict[str, Any] = {
            "check": view,
            "runs": [run_line(run) for run in shown],
            "page": page,
            "newer": run_cursor(shown[0]) if shown and has_newer else None,
            "older": run_cursor(shown[-1]) if shown and has_older else None,
            "region": region or "",
            "result": result if status else "",
            "results": list(RESULT_FILTERS),
        }
        template = "partials/runs_table.html" if is_htmx(request) else "pages/runs.html"
        return render(request, template, **context)

    @get("/runs/{run_id:uuid}")
    async def run_page(self, request: Req, run_id: FromPath[uuid.UUID]) -> Template:
        """One run: assertions, timings, response and request."""
        run = await get_run(request.app.state.reads, run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id}")
        store = reader_of(request)
        try:
            check: dict[str, Any] | None = check_view(
                await store.get(run.check_id), request.app.state.secretbox
            )
        except DomainError:
            check = None
        return render(request, "pages/run_detail.html", run=run_detail(run), check=check)

    @post("/checks/{check_id:uuid}/run", status_code=200, **can_run)
    async def run_now(
        self, request: Req, check_id: FromPath[uuid.UUID], view: FromQuery[str] = "table"
    ) -> Template | Redirect | Response[str]:
        """Run a check now from all its regions; the page's polling shows the results as they land."""
        store = store_of(request)
        row = await reader_of(request).get(check_id)
        _, run_ids = await store.run_now(row)
        if not is_htmx(request):
            return Redirect(f"/checks/{check_id}", status_code=303)
        message = f"Running from {len(run_ids)} region{'s' if len(run_ids) != 1 else ''}…"
        return Response(
            message, media_type="text/html", headers={"HX-Trigger": "runs-changed"}, status_code=200
        )

    @post("/checks/{check_id:uuid}/pause", status_code=200)
    async def pause(self, request: Req, check_id: FromPath[uuid.UUID]) -> Response[str] | Redirect:
        """Stop scheduling a check."""
        return await self._set_enabled(request, check_id, False)

    @post("/checks/{check_id:uuid}/resume", status_code=200)
    async def resume(self, request: Req, check_id: FromPath[uuid.UUID]) -> Response[str] | Redirect:
        """Schedule a paused check again."""
        return await self._set_enabled(request, check_id, True)

    async def _set_enabled(
        self, request: Req, check_id: uuid.UUID, enabled: bool
    ) -> Response[str] | Redirect:
        store = store_of(request)
        row = await store.set_enabled(check_id, enabled)
        if not is_htmx(request):
            return Redirect(f"/checks/{check_id}", status_code=303)
        sessions = request.app.state.reads
        marks = await stats.latest_runs(sessions, [row.id])
        incidents = await stats.open_incidents(sessions, [row.id])
        line = row_html(
            check_row(row, marks[row.id], incidents.get(row.id)), has(request, "run"), has(request, "write")
        )
        return Response(str(line), media_type="text/html")

    @post("/checks/{check_id:uuid}/delete", status_code=200)
    async def delete(self, request: Req, check_id: FromPath[uuid.UUID]) -> Response[str] | Redirect:
        """Delete a check (its row disappears from the table)."""
        await store_of(request).delete(check_id)
        if is_htmx(request):
            return Response("", media_type="text/html")
        return Redirect("/", status_code=303)
