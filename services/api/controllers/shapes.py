"""The shapes of the REST API's answers, declared so ``/schema`` shows them and a snapshot can guard them.

They are ``TypedDict``s on purpose: the views already build plain dicts that the CLI and scripts read,
so declaring their shape changes no byte on the wire and costs nothing per answer, while Litestar turns
each one into a schema component. Nested parts a check's author wrote (its request, assertions, alert
channels) stay open objects here; their exact schema is the contract model ``CheckSpec``, whose JSON
Schema is snapshotted under ``contracts/schemas``.

``total=False`` bases hold the keys an answer may leave out; the classes built on them add the keys it
always has (this spelling, rather than ``NotRequired``, is what Litestar reads correctly under
``from __future__ import annotations``).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, TypeVar, cast

# --- checks --------------------------------------------------------------------------------------------


class _CheckSpecFields(TypedDict, total=False):
    """A check's configuration as stored (secrets masked): the ``CheckSpec`` contract's fields."""

    name: str
    request: dict[str, Any]
    assertions: list[dict[str, Any]]
    regions: list[str]
    interval: int
    timeout: float
    enabled: bool
    alerts: list[dict[str, Any]]
    alert_policy: dict[str, Any]
    maintenance: list[dict[str, Any]]
    tags: list[str]
    steps: list[dict[str, Any]]
    teardown: list[dict[str, Any]]
    teardown_fails_check: bool
    share_cookies: bool
    variables: dict[str, str]
    secrets: dict[str, str]
    global_variables: dict[str, str]
    global_secrets: dict[str, str]


class CheckOut(_CheckSpecFields):
    """A check: its configuration plus identity and bookkeeping."""

    id: str
    revision: int
    created_at: str
    updated_at: str


class CheckPage(TypedDict):
    """One page of checks."""

    items: list[CheckOut]
    total: int
    limit: int
    offset: int


class CheckName(TypedDict):
    """A check named in a bulk answer."""

    id: str
    name: str


class Paused(TypedDict):
    """The checks a tag-wide pause stopped."""

    tag: str
    paused: list[CheckName]


class Resumed(TypedDict):
    """The checks a tag-wide resume started again."""

    tag: str
    resumed: list[CheckName]


class TagCount(TypedDict):
    """A tag and how many checks carry it."""

    tag: str
    checks: int


class TagList(TypedDict):
    """Every tag in use."""

    items: list[TagCount]


# --- runs ----------------------------------------------------------------------------------------------


#: Why a run has no usable response (``class`` as in the ``RunError`` contract; a keyword in Python,
#: hence the functional spelling).
RunErrorOut = TypedDict("RunErrorOut", {"class": str, "message": str})


class RunOut(TypedDict):
    """One run as stored: outcome, phases, assertions, the request sent and a bounded response sample."""

    run_id: str
    check_id: str
    region: str
    region_name: str
    slot: str | None
    trigger: Literal["scheduled", "manual", "confirmation"]
    status: Literal["passed", "failed", "error", "missed"]
    degraded: bool
    started_at: str | None
    completed_at: str | None
    response: dict[str, Any] | None
    timings: dict[str, float | None]
    error: RunErrorOut | None
    assertions: list[dict[str, Any]]
    request: dict[str, Any] | None
    runner_id: str | None
    steps: list[dict[str, Any]] | None
    failed_step: str | None
    certificate: dict[str, Any] | None


class RunPage(TypedDict):
    """One page of a check's runs; ``next_before`` is the keyset cursor of the next page."""

    items: list[RunOut]
    limit: int
    offset: int
    next_before: str | None


class _Waited(TypedDict, total=False):
    """With ``?wait=true``: the runs stored in time, and the ids still pending."""

    runs: list[RunOut]
    pending: list[str]


class RunNow(_Waited):
    """A manual run: its slot and one run id per region."""

    slot: str
    run_ids: list[str]


class RunSetRun(TypedDict):
    """One run of a run set: ``pending`` until stored."""

    check_id: str
    check: str
    region: str
    run_id: str
    status: str
    run: RunOut | None


class RunSetOut(TypedDict):
    """A tag-wide run (a CI gate) and its state so far."""

    id: str
    tag: str
    created_at: str
    state: Literal["running", "passed", "failed", "error"]
    pending: int
    runs: list[RunSetRun]
    skipped: list[dict[str, Any]]


class RunnerOut(TypedDict):
    """A runner as last heard from."""

    runner_id: str
    version: str
    capacity: int
    in_flight: int
    started_at: str | None
    last_seen: str | None
    health: Literal["live", "stale", "dead"]


class RegionOut(TypedDict):
    """A region, its runners and their best health (``none``: never had a runner)."""

    code: str
    name: str
    health: Literal["live", "stale", "dead", "none"]
    live: bool
    runners: list[RunnerOut]


class RegionList(TypedDict):
    """Every known region."""

    items: list[RegionOut]


# --- results over a window ----------------------------------------------------------------------------


class Stats(TypedDict):
    """Counts and latency percentiles over a window."""

    total: int
    responded: int
    passed: int
    failed: int
    errors: int
    missed: int
    failures: int
    availability: float | None
    pass_rate: float | None
    p50_ms: float | None
    p95_ms: float | None


class RegionStats(Stats):
    """:class:`Stats` for one region."""

    region: str
    name: str


class Summary(TypedDict):
    """A check's results over a window: overall and per region."""

    window: str
    since: str
    source: Literal["runs", "rollups"]
    overall: Stats
    regions: list[RegionStats]


class Chart(TypedDict):
    """Response time per region over a window (per run or hourly)."""

    window: str
    resolution: Literal["run", "hour"]
    series: list[dict[str, Any]]


# --- alerting ------------------------------------------------------------------------------------------


class NotificationOut(TypedDict):
    """One transition sent (or being sent) to one alert channel, with every attempt."""

    id: str
    channel_index: int
    channel: str
    transition: str
    status: str
    attempts: int
    last_error: str | None
    attempt_log: list[Any]
    created_at: str
    next_attempt_at: str | None
    sent_at: str | None


class FailedNotification(NotificationOut):
    """A delivery given up on, with its check."""

    check_id: str


class _IncidentNotifications(TypedDict, total=False):
    """Present when notifications were asked for (always for a single incident)."""

    notifications: list[NotificationOut]


class IncidentOut(_IncidentNotifications):
    """An incident: when it opened and resolved, which regions failed and why (``failing_assertions``:
    one row per region, a failure detail of ``contracts.v1.failures`` plus its ``text``)."""

    id: str
    check_id: str
    state: Literal["open", "resolved"]
    opened_at: str
    opened_slot: str | None
    resolved_at: str | None
    resolve_reason: str | None
    failing_regions: list[dict[str, Any]]
    failing_assertions: list[dict[str, Any]]
    reminders_sent: int
    last_notified_at: str | None
    held: bool
    note: str | None


class IncidentPage(TypedDict):
    """One page of incidents (each with its notifications when asked)."""

    items: list[IncidentOut]
    limit: int
    offset: int


class FailedNotifications(TypedDict):
    """Deliveries given up on."""

    items: list[FailedNotification]


class TestSent(TypedDict):
    """How a test notification went."""

    ok: bool
    channel: str
    status: int | None
    error: str | None
    duration_ms: float


class AlertSettingsOut(TypedDict):
    """The global alert policy (defaults when unset) and maintenance windows."""

    alert_policy: dict[str, Any]
    maintenance: list[dict[str, Any]]


# --- people and tokens ---------------------------------------------------------------------------------


class UserOut(TypedDict):
    """A user (never the hash)."""

    id: str
    username: str
    role: str
    is_admin: bool
    created_at: str


class UserList(TypedDict):
    """Every user."""

    items: list[UserOut]


class _TokenValue(TypedDict, total=False):
    """Only in the answer to creating a token: its value, shown this once."""

    token: str


class TokenOut(_TokenValue):
    """An API token (its prefix only)."""

    id: str
    name: str
    prefix: str
    scope: str
    user_id: str | None
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class TokenList(TypedDict):
    """Tokens, newest first."""

    items: list[TokenOut]


# --- global values -------------------------------------------------------------------------------------


class VariableList(TypedDict):
    """Every global variable and its value."""

    variables: dict[str, str]


class SecretList(TypedDict):
    """Global secrets by name (values masked: they are write-only)."""

    secrets: dict[str, str]


class GlobalSet(TypedDict):
    """A global value was set; these checks got a new revision."""

    name: str
    updated_checks: list[str]


# --- status pages and badges ---------------------------------------------------------------------------


class StatusPageOut(TypedDict):
    """A status page."""

    id: str
    slug: str
    title: str
    logo_text: str | None
    logo_colour: str | None
    public: bool
    groups: list[dict[str, Any]]
    created_at: str
    updated_at: str


class StatusPageList(TypedDict):
    """Every status page."""

    items: list[StatusPageOut]


class NoticeOut(TypedDict):
    """An incident update or maintenance notice on a status page."""

    id: str
    kind: str
    status: str
    title: str
    body: str
    starts_at: str | None
    ends_at: str | None
    created_at: str


class NoticeList(TypedDict):
    """A page's notices, newest first."""

    items: list[NoticeOut]


class BadgeUrls(TypedDict):
    """A check's badge token and URLs by badge kind."""

    token: str
    urls: dict[str, str]


T = TypeVar("T")


def declared(shape: type[T], view: Any) -> T:
    """``view`` (a plain dict a view function built) as the answer ``shape`` it is declared to be.

    Nothing is copied or checked at run time; ``services/api/tests/test_openapi.py`` compares real
    answers with the declared schema."""
    del shape
    return cast(T, view)
