"""Settings, read from ``SEYMOUR_*`` environment variables (and a ``.env`` file when present)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob a Seymour process reads. Embedded defaults: SQLite file and the in-process bus."""

    model_config = SettingsConfigDict(env_prefix="SEYMOUR_", env_file=".env", extra="ignore")

    data_dir: Path = Path("seymour-data")
    database_url: str | None = None
    broker_url: str = "memory://"

    api_token: str | None = None
    admin_password: str | None = None
    admin_username: str = "admin"
    secret_key: str | None = None
    secure_cookies: bool = False
    #: Reverse proxies (addresses or networks) whose ``X-Forwarded-For`` names the client for login
    #: throttling; the header is ignored from anyone else.
    trusted_proxies: list[str] = Field(default_factory=list)

    host: str = "127.0.0.1"
    port: int = 8000
    #: ``seymour serve api`` processes sharing the port (``SO_REUSEPORT``); ``seymour up`` always has one.
    api_workers: int = Field(default=1, ge=1)
    #: Set by ``--workers`` for its worker processes: bind the port shared.
    api_reuse_port: bool = False
    base_url: str | None = None

    region: str = "local"
    runner_id: str | None = None
    runner_concurrency: int = Field(default=256, ge=1)
    #: Response bodies a runner may hold at once, in MiB: each run reserves its ``max_response_bytes``
    #: (every step's) and waits when they do not fit; the concurrency is lowered to budget ÷ 1 MiB when
    #: that is less. Decoding and parsing a body cost a few times its size: give the runner about three
    #: times this much memory.
    runner_memory_budget_mb: int = Field(default=256, ge=16)
    #: A runner sends the results that complete within ``runner_batch_ms`` of each other as one message of
    #: at most this many (``check.completed.batch.v1``); 1 sends every result alone, at once.
    runner_batch_items: int = Field(default=100, ge=1, le=1000)
    runner_batch_ms: float = Field(default=20.0, ge=0)
    heartbeat_interval: float = Field(default=10.0, gt=0)
    runner_stale_after: float = Field(default=30.0, gt=0)
    runner_dead_after: float = Field(default=120.0, gt=0)
    #: Outbound requests (checks, alerts): networks blocked IN ADDITION to the fixed set of
    #: ``services.common.netguard`` (metadata, link-local, 0.0.0.0/8, ::, multicast), which no setting
    #: removes; ``allowed_networks`` re-opens a part explicitly (the most specific network decides).
    blocked_networks: list[str] = Field(default_factory=list)
    allowed_networks: list[str] = Field(default_factory=list)
    #: Also block private and loopback networks (RFC 1918, CGNAT, ULA, 127/8, ::1). Provisioned homes
    #: and regions set it; ``seymour up`` leaves it off: there the monitored services are your own.
    block_private_networks: bool = False

    prefetch: int = Field(default=256, ge=1)
    results_batch_size: int = Field(default=500, ge=1)
    results_batch_ms: float = Field(default=50.0, ge=0)
    #: About how many results (not messages: a runner's message carries up to a hundred) the results and
    #: the alerts consumers each hold unacked at once; their prefetch follows the messages' weight.
    results_inflight_items: int = Field(default=3000, ge=1)
    alerts_inflight_items: int = Field(default=3000, ge=1)
    run_expiry_min: float = Field(default=5.0, gt=0)
    run_expiry_max: float = Field(default=60.0, gt=0)
    #: The router sheds a region's scheduled runs (missed, ``overloaded``) while the runs already queued
    #: for it would take its runners longer than this many seconds to start; 0 never sheds.
    router_shed_after: float = Field(default=1.0, ge=0)
    #: ... and never while at most this many runs wait (a burst of slots is not a backlog).
    router_shed_floor: int = Field(default=100, ge=0)
    retention_days: int = Field(default=30, ge=1)

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "seymour@localhost"
    smtp_security: str = "starttls"

    log_level: str = "INFO"
    #: ``text`` (key=value lines) or ``json`` (one JSON object per line, run fields as keys).
    log_format: str = Field(default="text", pattern="^(text|json)$")
    #: The operations port of a served process (``/metrics``, ``/livez``, ``/readyz``); off when unset.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    health_file: Path | None = None
    health_interval: float = Field(default=5.0, gt=0)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'seymour.db').resolve()}"

    def public_base_url(self) -> str:
        """Where people reach the UI, for links in alerts."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")
