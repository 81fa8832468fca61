"""Status page administration in the UI (administrators only): list, create, edit, delete, preview,
and post incident updates or maintenance notices.

Groups are form rows (``group-<key>-name``, ``-tag``, ``-checks``); a group's checks are typed one per
line as ``check name = Public name`` (the public name defaults to the check's name).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from services.api.controllers.status_pages import forget_rendered
from services.api.permissions import admin_only
from services.api.status_pages import (
    INCIDENT_STATUSES,
    MAINTENANCE_STATUSES,
    NoticeInput,
    PageConfig,
    StatusPageStore,
    parse,
)
from services.api.ui.security import current_user
from services.api.ui.status_public import render_page
from services.common.db.models import Check, StatusPage
from services.common.errors import DomainError

Req = Request[Any, Any, Any]


@dataclass
class GroupRow:
    """One group as the form shows it."""

    key: str
    name: str = ""
    tag: str = ""
    checks: str = ""

    @property
    def blank(self) -> bool:
        """Whether nothing was typed in this row."""
        return not (self.name.strip() or self.tag.strip() or self.checks.strip())


@dataclass
class PageForm:
    """The status page form, as text, so invalid input comes back as typed."""

    title: str = ""
    slug: str = ""
    logo_text: str = ""
    logo_colour: str = "#1f6feb"
    public: bool = False
    groups: list[GroupRow] = field(default_factory=list)

    @classmethod
    def from_post(cls, data: Any) -> PageForm:
        """The form as posted."""

        def one(name: str) -> str:
            value = data.get(name)
            return value if isinstance(value, str) else ""

        keys = [k for k in data.getall("group_row", []) if isinstance(k, str) and k]
        return cls(
            title=one("title"),
            slug=one("slug"),
            logo_text=one("logo_text"),
            logo_colour=one("logo_colour"),
            public=one("public") == "on",
            groups=[
                GroupRow(k, one(f"group-{k}-name"), one(f"group-{k}-tag"), one(f"group-{k}-checks"))
                for k in keys
            ],
        )

    @classmethod
    def from_page(cls, row: StatusPage, names: dict[str, str]) -> PageForm:
        """The form of a stored page (``names``: check id → check name)."""
        groups = []
        for group in row.groups:
            lines = []
            for item in group.get("checks") or []:
                name = names.get(item["check_id"], item["check_id"])
                shown = item["display_name"]
                lines.append(name if shown == name else f"{name} = {shown}")
            groups.append(
                GroupRow(secrets.token_hex(4), group["name"], group.get("tag") or "", "\n".join(lines))
            )
        return cls(row.title, row.slug, row.logo_text or "", row.logo_colour or "#1f6feb", row.public, groups)

    def with_blank_group(self) -> PageForm:
        """The form with one empty group row at the end, to add a group without JavaScript."""
        if not self.groups or not self.groups[-1].blank:
            self.groups.append(GroupRow(secrets.token_hex(4)))
        return self

    def to_data(self, by_name: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """The JSON a page is validated from (``by_name``: check name → id), and errors by form key."""
        errors: dict[str, str] = {}
        groups = []
        for row in self.groups:
            if row.blank:
                continue
            checks = []
            for line in row.checks.splitlines():
                if not line.strip():
                    continue
                name, _, shown = line.partition("=")
                name, shown = name.strip(), shown.strip() or name.strip()
                if name not in by_name:
                    errors[f"group:{row.key}"] = f"no check named '{name}'"
                    continue
                checks.append({"check_id": by_name[name], "display_name": shown})
            groups.append({"name": row.name.strip(), "tag": row.tag.strip() or None, "checks": checks})
        data = {
            "title": self.title.strip(),
            "slug": self.slug.strip(),
            "logo_text": self.logo_text.strip() or None,
            "logo_colour": self.logo_colour.strip() or None,
            "public": self.public,
            "groups": groups,
        }
        return data, errors

    def form_key(self, field_name: str) -> str:
        """Where an API error's field goes on this form."""
        parts = field_name.split(".")
        if parts[0] == "groups" and len(parts) > 1 and parts[1].isdigit():
            rows = [row for row in self.groups if not row.blank]
            index = int(parts[1])
            if index < len(rows):
                return f"group:{rows[index].key}"
        return parts[0] if parts[0] in ("title", "slug", "logo_text", "logo_colour", "groups") else "general"


async def _check_names(request: Req) -> dict[str, str]:
    async with request.app.state.sessions() as session:
        return {str(cid): name for cid, name in await session.execute(select(Check.id, Check.name))}


def _render(request: Req, template: str, *, status_code: int = 200, **context: Any) -> Template:
    user = current_user(request)
    return Template(
        template_name=template,
        context={"user": user, "csrf": user.csrf_token, "request_path": request.url.path, **context},
        status_code=status_code,
    )


class StatusPagesAdmin(Controller):
    """Status pages in the UI."""

    path = "/status-pages"
    include_in_schema = False
    opt = admin_only

    @get("/")
    async def index(self, request: Req) -> Template:
        """Every page, with its public link."""
        pages = await StatusPageStore(request.app.state.sessions).all()
        return _render(request, "pages/status_pages.html", pages=pages)

    @get("/new")
    async def new(self, request: Req) -> Template:
        """An empty page form."""
        return await self._form(request, PageForm().with_blank_group(), page=None)

    @post("/", status_code=200)
    async def create(self, request: Req) -> Template | Redirect:
        """Create a page from the form."""
        return await self._save(request, None)

    @get("/{page_id:uuid}/edit")
    async def edit(self, request: Req, page_id: FromPath[uuid.UUID]) -> Template:
        """A page's form, and its notices."""
        row = await StatusPageStore(request.app.state.sessions).get(page_id)
        form = PageForm.from_page(row, await _check_names(request)).with_blank_group()
        return await self._form(request, form, page=row)

    @post("/{page_id:uuid}", status_code=200)
    async def update(self, request: Req, page_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Save a page from the form."""
        return await self._save(request, page_id)

    @post("/{page_id:uuid}/delete", status_code=200)
    async def delete(self, request: Req, page_id: FromPath[uuid.UUID]) -> Redirect:
        """Delete a page."""
        await StatusPageStore(request.app.state.sessions).delete(page_id)
        forget_rendered(request)
        return Redirect("/status-pages", status_code=303)

    @get("/{page_id:uuid}/preview")
    async def preview(self, request: Req, page_id: FromPath[uuid.UUID]) -> Response[bytes]:
        """The page as the public will see it, public or not yet."""
        row = await StatusPageStore(request.app.state.sessions).get(page_id)
        body = await render_page(request, row.slug, allow_private=True)
        return Response(body, media_type="text/html; charset=utf-8")

    @post("/{page_id:uuid}/notices", status_code=200)
    async def post_notice(self, request: Req, page_id: FromPath[uuid.UUID]) -> Template | Redirect:
        """Post an incident update or a maintenance notice from the form."""
        data = await request.form()
        fields = {
            key: data.get(key) or None for key in ("kind", "title", "body", "status", "starts_at", "ends_at")
        }
        for key in ("starts_at", "ends_at"):
            if fields[key]:
                fields[key] = _utc(str(fields[key]))
        fields["body"] = fields["body"] or ""
        store = StatusPageStore(request.app.state.sessions)
        try:
            notice = parse(NoticeInput, fields, "notice")
            await store.post_notice(page_id, notice)
        except DomainError as exc:
            row = await store.get(page_id)
            form = PageForm.from_page(row, await _check_names(request)).with_blank_group()
            errors = {
                "notice": "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors) or str(exc.detail)
            }
            return await self._form(request, form, page=row, notice_errors=errors, status_code=422)
        forget_rendered(request)
        return Redirect(f"/status-pages/{page_id}/edit", status_code=303)

    async def _save(self, request: Req, page_id: uuid.UUID | None) -> Template | Redirect:
        form = PageForm.from_post(await request.form())
        names = await _check_names(request)
        data, errors = form.to_data({name: cid for cid, name in names.items()})
        store = StatusPageStore(request.app.state.sessions)
        if not errors:
            try:
                config = parse(PageConfig, data, "status page")
                row = await store.save(config, page_id)
            except DomainError as exc:
                for item in exc.errors or [{"field": "general", "message": str(exc.detail)}]:
                    errors.setdefault(form.form_key(item["field"]), item["message"])
            else:
                forget_rendered(request)
                return Redirect(f"/status-pages/{row.id}/edit", status_code=303)
        page = await store.get(page_id) if page_id else None
        return await self._form(request, form.with_blank_group(), page=page, errors=errors, status_code=422)

    async def _form(
        self,
        request: Req,
        form: PageForm,
        *,
        page: StatusPage | None,
        errors: dict[str, str] | None = None,
        notice_errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        store = StatusPageStore(request.app.state.sessions)
        notices = await store.notices(page.id) if page else []
        names = sorted((await _check_names(request)).values())
        return _render(
            request,
            "pages/status_page_form.html",
            status_code=status_code,
            form=form,
            page=page,
            errors=errors or {},
            notice_errors=notice_errors or {},
            notices=notices,
            check_names=names,
            incident_statuses=INCIDENT_STATUSES,
            maintenance_statuses=MAINTENANCE_STATUSES,
        )


def _utc(text: str) -> str:
    """A ``datetime-local`` value (taken as UTC) or an ISO time → ISO with a zone."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
