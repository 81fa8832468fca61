"""Tables. Runs grow fastest, so they are indexed for "latest runs of a check" and "runs in a window"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from contracts.v1.base import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects (SQLite stores naive values; we put UTC back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Seymour table."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Check(Base):
    """A check's current configuration. ``spec`` is the validated ``CheckSpec`` as JSON."""

    __tablename__ = "checks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckTag(Base):
    """One tag of one check, kept in step with ``checks.spec['tags']`` so a tag filter is an index read."""

    __tablename__ = "check_tags"

    check_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("checks.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class RunSet(Base):
    """A tag-wide run for a CI gate: which run of which check in which region to wait for.

    ``items`` lists ``{check_id, check, region, run_id}``; the runs themselves land in ``runs``.
    """

    __tablename__ = "run_sets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)


class StatusPage(Base):
    """A status page: its look, its groups of checks (by id with a display name, or by tag), and
    whether anyone may see it without logging in. ``groups`` is validated by the api."""

    __tablename__ = "status_pages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    logo_text: Mapped[str | None] = mapped_column(String(60), nullable=True)
    logo_colour: Mapped[str | None] = mapped_column(String(7), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusNotice(Base):
    """An incident update or a scheduled-maintenance notice an admin posted on a status page."""

    __tablename__ = "status_notices"
    __table_args__ = (Index("ix_status_notices_page_created", "page_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    page_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("status_pages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckBadge(Base):
    """The unguessable token that lets a README show a check's badges without exposing the check."""

    __tablename__ = "check_badges"

    check_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("checks.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One slot × region: a result (passed/failed/error) or a miss."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_check_completed", "check_id", "completed_at"),
        Index("ix_runs_check_region_completed", "check_id", "region", "completed_at"),
        Index("ix_runs_completed", "completed_at"),
        # Runs that did not pass (the runs page's result filters), without walking the passes.
        Index(
            "ix_runs_check_not_passed",
            "check_id",
            "completed_at",
            sqlite_where=text("status <> 'passed'"),
            postgresql_where=text("status <> 'passed'"),
        ),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    check_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    region: Mapped[str] = mapped_column(String(40))
    slot: Mapped[datetime] = mapped_column()
    trigger: Mapped[str] = mapped_column(String(20), default="scheduled")
    status: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime] = mapped_column()
    total_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_class: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    assertions_passed: Mapped[int] = mapped_column(Integer, default=0)
    assertions_total: Mapped[int] = mapped_column(Integer, default=0)
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    assertions: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    runner_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    stored_at: Mapped[datetime | None] = mapped_column(nullable=True)
    steps: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    failed_step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    certificate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RunRollup(Base):
    """Hourly per-check per-region aggregates, so summaries over 30 days never scan raw runs.

    ``latency_hist`` maps a bucket's upper bound in ms (log-spaced) to a count, for p50/p95.
    """

    __tablename__ = "run_rollups"

    check_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    region: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    responded: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_hist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Runner(Base):
    """The last heartbeat of each runner."""

    __tablename__ = "runners"

    runner_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    region: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[str] = mapped_column(String(40))
    capacity: Mapped[int] = mapped_column(Integer)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()
    interval_s: Mapped[float] = mapped_column(Float, default=10.0)


class Incident(Base):
    """One incident of one check; at most one open per check (partial unique index)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents_one_open",
            "check_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
        Index("ix_incidents_check_opened", "check_id", "opened_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    check_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(10), default="open")
    opened_at: Mapped[datetime] = mapped_column()
    opened_slot: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolve_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    failing_regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    failing_assertions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_notified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Notification(Base):
    """One transition × channel delivery, with every attempt; the idempotency key makes it once-only."""

    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    check_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    channel_index: Mapped[int] = mapped_column(Integer)
    channel_type: Mapped[str] = mapped_column(String(20))
    transition: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempt_log: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AlertState(Base):
    """The alert policy engine's per-check state (counters, recent slots), persisted across restarts."""

    __tablename__ = "alert_state"

    check_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person who can log in to the UI."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="editor", server_default="editor")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_admin(self) -> bool:
        """Whether this user administers Seymour (users, tokens, global settings)."""
        return self.role == "admin"


class ApiToken(Base):
    """A Bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    scope: Mapped[str] = mapped_column(String(10), default="full", server_default="full")
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebSession(Base):
    """A logged-in browser session; the cookie holds the id, the table holds its SHA-256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class SchedulerLease(Base):
    """Leader fencing: every new leader bumps ``epoch``; the router ignores slots of older epochs."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerSlot(Base):
    """The last slot of each check the scheduler leader has dealt with (fired, or recorded as missed).

    A new leader records every slot after it and before its own first firing as missed, so a time with no
    leader (database away, every scheduler down) leaves a visible, counted gap instead of no rows at all.
    Only the holder of the current ``scheduler_lease.epoch`` writes here.
    """

    __tablename__ = "scheduler_slots"

    check_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    last_slot: Mapped[datetime] = mapped_column()
    epoch: Mapped[int] = mapped_column(Integer)


class Setting(Base):
    """Global settings editable at run time (global alert policy, maintenance windows)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
