"""Status pages: their configuration (validated here), storage, and the notices admins post on them.

A group lists checks by id, each with the display name the public sees (never the check's URL), or
names a tag and takes every check that carries it (shown under its check name).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contracts.v1.base import utcnow
from contracts.v1.checks import TAG
from services.api.errors import field_errors
from services.common.db.models import Check, CheckTag, StatusNotice, StatusPage
from services.common.db.sessions import Sessions
from services.common.errors import Conflict, Invalid, NotFound

SLUG: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
COLOUR: Final = re.compile(r"^#[0-9a-fA-F]{6}$")
INCIDENT_STATUSES: Final = ("investigating", "identified", "monitoring", "resolved")
MAINTENANCE_STATUSES: Final = ("scheduled", "in_progress", "completed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PageCheck(_Strict):
    """One check on a page and the name the public sees."""

    check_id: uuid.UUID
    display_name: str = Field(min_length=1, max_length=100)


class PageGroup(_Strict):
    """A group of checks on a page: listed checks, or every check with ``tag``."""

    name: str = Field(min_length=1, max_length=100)
    tag: str | None = None
    checks: list[PageCheck] = Field(default_factory=list, max_length=200)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not TAG.match(value):
            raise ValueError(f"tag '{value}' is not a valid tag")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PageGroup:
        if self.tag is None and not self.checks:
            raise ValueError("a group needs checks or a tag")
        if self.tag is not None and self.checks:
            raise ValueError("a group takes its checks from a tag or a list, not both")
        return self


class PageConfig(_Strict):
    """What an admin sets on a status page."""

    title: str = Field(min_length=1, max_length=200)
    slug: str
    logo_text: str | None = Field(default=None, max_length=60)
    logo_colour: str | None = None
    public: bool = False
    groups: list[PageGroup] = Field(min_length=1, max_length=20)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("slug must be 1-64 lowercase letters, digits or dashes, e.g. 'acme'")
        return value

    @field_validator("logo_colour")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not COLOUR.match(value):
            raise ValueError("logo_colour must be a hex colour like #1f6feb")
        return value


class NoticeInput(_Strict):
    """An incident update or a scheduled-maintenance notice."""

    kind: Literal["incident", "maintenance"]
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=5000)
    status: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @model_validator(mode="after")
    def _coherent(self) -> NoticeInput:
        allowed = INCIDENT_STATUSES if self.kind == "incident" else MAINTENANCE_STATUSES
        if self.status is not None and self.status not in allowed:
            raise ValueError(f"status of a {self.kind} notice is one of {', '.join(allowed)}")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times need a time zone, e.g. 2026-12-01T02:00:00Z")
        if self.kind == "maintenance" and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a maintenance notice needs starts_at and ends_at")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    @property
    def effective_status(self) -> str:
        """The status given, or the first one of its kind."""
        return self.status or (INCIDENT_STATUSES[0] if self.kind == "incident" else MAINTENANCE_STATUSES[0])


def parse(model: type[_Strict], data: Any, what: str) -> Any:
    """Validate ``data`` as ``model``; 422 naming each invalid field."""
    if not isinstance(data, dict):
        raise Invalid(
            f"the body must be a JSON object describing a {what}",
            [{"field": "body", "message": "expected an object"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise Invalid(f"invalid {what}: {', '.join(e['field'] for e in errors)}", errors) from None


def page_view(row: StatusPage) -> dict[str, Any]:
    """A page as the API shows it."""
    return {
        "id": str(row.id),
        "slug": row.slug,
        "title": row.title,
        "logo_text": row.logo_text,
        "logo_colour": row.logo_colour,
        "public": row.public,
        "groups": row.groups,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def notice_view(row: StatusNotice) -> dict[str, Any]:
    """A notice as the API shows it."""
    return {
        "id": str(row.id),
        "kind": row.kind,
        "status": row.status,
        "title": row.title,
        "body": row.body,
        "starts_at": row.starts_at.isoformat() if row.starts_at else None,
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "created_at": row.created_at.isoformat(),
    }


@dataclass(frozen=True)
class ResolvedCheck:
    """A check as a page shows it: its id (never shown) and its public name."""

    check_id: uuid.UUID
    display_name: str


@dataclass(frozen=True)
class ResolvedGroup:
    """A group with its checks looked up (tag groups expanded)."""

    name: str
    checks: tuple[ResolvedCheck, ...]


@dataclass
class StatusPageStore:
    """Status pages and their notices."""

    sessions: Sessions

    async def all(self) -> list[StatusPage]:
        """Every page, by title."""
        async with self.sessions() as session:
            return list((await session.scalars(select(StatusPage).order_by(StatusPage.title))).all())

    async def get(self, page_id: uuid.UUID) -> StatusPage:
        """One page, or 404."""
        async with self.sessions() as session:
            row: StatusPage | None = await session.get(StatusPage, page_id)
        if row is None:
            raise NotFound(f"no status page with id {page_id}")
        return row

    async def by_slug(self, slug: str) -> StatusPage | None:
        """The page at ``slug``, if any."""
        async with self.sessions() as session:
            found: StatusPage | None = (
                await session.scalars(select(StatusPage).where(StatusPage.slug == slug))
            ).one_or_none()
        return found

    async def _known_checks(self, config: PageConfig) -> None:
        ids = {item.check_id for group in config.groups for item in group.checks}
        if not ids:
            return
        async with self.sessions() as session:
            found = set((await session.scalars(select(Check.id).where(Check.id.in_(ids)))).all())
        for index, group in enumerate(config.groups):
            for position, item in enumerate(group.checks):
                if item.check_id not in found:
                    field = f"groups.{index}.checks.{position}.check_id"
                    raise Invalid(
                        f"no check with id {item.check_id}",
                        [{"field": field, "message": "no such check"}],
                    )

    async def save(self, config: PageConfig, page_id: uuid.UUID | None = None) -> StatusPage:
        """Create a page (``page_id`` None) or replace one; 409 when the slug is taken."""
        await self._known_checks(config)
        values = config.model_dump(mode="json")
        try:
            async with self.sessions() as session, session.begin():
                if page_id is None:
                    row = StatusPage(id=uuid.uuid4(), created_at=utcnow(), updated_at=utcnow(), **values)
                    session.add(row)
                else:
                    found: StatusPage | None = await session.get(StatusPage, page_id)
                    if found is None:
                        raise NotFound(f"no status page with id {page_id}")
                    row = found
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.updated_at = utcnow()
        except IntegrityError:
            raise Conflict(
                f"the slug '{config.slug}' is taken", [{"field": "slug", "message": "already in use"}]
            ) from None
        return row

    async def delete(self, page_id: uuid.UUID) -> None:
        """Delete a page and its notices."""
        async with self.sessions() as session, session.begin():
            row = await session.get(StatusPage, page_id)
            if row is None:
                raise NotFound(f"no status page with id {page_id}")
            await session.delete(row)

    async def post_notice(self, page_id: uuid.UUID, notice: NoticeInput) -> StatusNotice:
        """Add a notice to a page."""
        await self.get(page_id)
        row = StatusNotice(
            id=uuid.uuid4(),
            page_id=page_id,
            kind=notice.kind,
            status=notice.effective_status,
            title=notice.title,
            body=notice.body,
            starts_at=notice.starts_at,
            ends_at=notice.ends_at,
            created_at=utcnow(),
        )
        async with self.sessions() as session, session.begin():
            session.add(row)
        return row

    async def notices(self, page_id: uuid.UUID, *, limit: int = 50) -> list[StatusNotice]:
        """A page's notices, newest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(StatusNotice)
                .where(StatusNotice.page_id == page_id)
                .order_by(StatusNotice.created_at.desc(), StatusNotice.id)
                .limit(limit)
            )
            return list(rows.all())

    async def resolve(self, row: StatusPage) -> list[ResolvedGroup]:
        """The page's groups with tag groups expanded to the checks that carry the tag (by name) and
        checks deleted since the page was saved left out."""
        groups = [PageGroup.model_validate(group) for group in row.groups]
        tags = {group.tag for group in groups if group.tag}
        ids = {item.check_id for group in groups for item in group.checks}
        async with self.sessions() as session:
            existing = (
                set((await session.scalars(select(Check.id).where(Check.id.in_(ids)))).all())
                if ids
                else set()
            )
            tagged: dict[str, list[tuple[uuid.UUID, str]]] = {}
            if tags:
                rows = await session.execute(
                    select(CheckTag.tag, Check.id, Check.name)
                    .join(Check, Check.id == CheckTag.check_id)
                    .where(CheckTag.tag.in_(tags))
                    .order_by(Check.name)
                )
                for tag, check_id, name in rows:
                    tagged.setdefault(tag, []).append((check_id, name))
        out = []
        for group in groups:
            if group.tag:
                checks = tuple(ResolvedCheck(cid, name) for cid, name in tagged.get(group.tag, []))
            else:
                checks = tuple(
                    ResolvedCheck(item.check_id, item.display_name)
                    for item in group.checks
                    if item.check_id in existing
                )
            out.append(ResolvedGroup(group.name, checks))
        return out
