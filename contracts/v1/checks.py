"""The check configuration (``CheckSpec``): one shape from the api through the scheduler to the runner.

Everything a user can misconfigure is rejected here, at config time, with an error naming the field,
so a runner never meets an assertion it cannot evaluate.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime, time
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

from contracts.v1.base import AwareDatetime, Frozen
from contracts.v1.patterns import (
    MAX_PATTERN_CHARS,
    UnsupportedPattern,
    compile_pattern,
    parse_jsonpath,
    schema_patterns,
)
from contracts.v1.regions import REGIONS
from contracts.v1.templates import NAME_RE, Placeholder, TemplateError, has_placeholders, parse

Source = Literal[
    "status_code",
    "response_time",
    "header",
    "json_body",
    "text_body",
    "tls_certificate",
    "json_schema",
    "phase_time",
]
Comparison = Literal[
    "equals",
    "not_equals",
    "greater_than",
    "less_than",
    "greater_or_equal",
    "less_or_equal",
    "contains",
    "not_contains",
    "matches",
    "not_matches",
    "is_empty",
    "is_not_empty",
    "is_null",
    "is_not_null",
    "exists",
    "not_exists",
    "matches_schema",
]

ORDERING: Final = frozenset({"greater_than", "less_than", "greater_or_equal", "less_or_equal"})
REGEX: Final = frozenset({"matches", "not_matches"})
UNARY: Final = frozenset({"is_empty", "is_not_empty", "is_null", "is_not_null", "exists", "not_exists"})

#: Which comparisons make sense for which source. The UI offers exactly these; anything else is a
#: config error rather than an assertion that can never pass.
COMPARISONS_BY_SOURCE: Final[dict[str, tuple[str, ...]]] = {
    "status_code": (
        "equals",
        "not_equals",
        "greater_than",
        "less_than",
        "greater_or_equal",
        "less_or_equal",
        "matches",
        "not_matches",
    ),
    "response_time": ("less_than", "less_or_equal", "greater_than", "greater_or_equal"),
    "header": (
        "equals",
        "not_equals",
        "greater_than",
        "less_than",
        "greater_or_equal",
        "less_or_equal",
        "contains",
        "not_contains",
        "matches",
        "not_matches",
        "is_empty",
        "is_not_empty",
        "exists",
        "not_exists",
    ),
    "json_body": (
        "equals",
        "not_equals",
        "greater_than",
        "less_than",
        "greater_or_equal",
        "less_or_equal",
        "contains",
        "not_contains",
        "matches",
        "not_matches",
        "is_empty",
        "is_not_empty",
        "is_null",
        "is_not_null",
        "exists",
        "not_exists",
    ),
    "text_body": (
        "equals",
        "not_equals",
        "contains",
        "not_contains",
        "matches",
        "not_matches",
        "is_empty",
        "is_not_empty",
    ),
    "tls_certificate": (
        "equals",
        "not_equals",
        "greater_than",
        "less_than",
        "greater_or_equal",
        "less_or_equal",
        "contains",
        "not_contains",
        "matches",
        "not_matches",
    ),
    "json_schema": ("matches_schema",),
    "phase_time": ("less_than", "less_or_equal", "greater_than", "greater_or_equal"),
}
SOURCES_WITH_PROPERTY: Final = frozenset({"header", "json_body", "tls_certificate", "phase_time"})
#: What ``tls_certificate`` can look at in the certificate the server actually presented.
CERTIFICATE_PROPERTIES: Final = ("days_until_expiry", "issuer", "subject", "san", "hostname_match")
#: The request phases ``phase_time`` can assert on (milliseconds, as in the run's timings).
PHASES: Final = ("dns", "connect", "tls", "first_byte", "download")
METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HEADER_NAME: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
MAX_INTERVAL: Final = 7 * 24 * 3600
#: A tag: ``team:payments``, ``deploy-smoke``, ``tier.1``. No spaces or slashes, so it fits a query
#: string, a path segment and a CLI flag unquoted.
TAG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.\-]{0,63}$")
MAX_TAGS: Final = 20

JSONValue = Any

#: Size limits of configuration being saved (see :data:`SAVING`): a check travels on the bus every
#: interval and is parsed by every runner, so what a user may save is bounded, each field by itself and
#: the whole spec (its JSON) together. Each refusal names the field.
MAX_SPEC_BYTES: Final = 64 * 1024
MAX_URL_CHARS: Final = 4096
MAX_HEADERS: Final = 50
MAX_HEADER_NAME_CHARS: Final = 256
MAX_HEADER_VALUE_CHARS: Final = 8192
MAX_BODY_BYTES: Final = 32 * 1024
MAX_PROPERTY_CHARS: Final = 1000
MAX_TARGET_BYTES: Final = 16 * 1024

#: Validation context for configuration being saved (api, UI form, import): regexes must run on RE2.
#: Without it (a spec read back from the database or the bus) a regex RE2 refuses still loads, and the
#: runner ends its runs as errors that say why — a check saved earlier is never silently unscheduled.
SAVING: Final[dict[str, bool]] = {"saving": True}


class Assertion(Frozen):
    """One thing the response must satisfy, e.g. ``$.title equals "demo"``."""

    source: Source
    property: str | None = None
    comparison: Comparison
    target: JSONValue = None

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> Assertion:
        strict = saving(info)
        if strict:
            _check_property_length(self.property)
            if self.target is not None and (size := json_size(self.target)) > MAX_TARGET_BYTES:
                raise ValueError(f"target is {size:,} bytes of JSON; the limit is {MAX_TARGET_BYTES:,}")
        allowed = COMPARISONS_BY_SOURCE[self.source]
        if self.comparison not in allowed:
            raise ValueError(
                f"comparison '{self.comparison}' is not valid for source '{self.source}'"
                f" (valid: {', '.join(allowed)})"
            )
        if self.source in SOURCES_WITH_PROPERTY:
            if not self.property or not self.property.strip():
                what = "a header name" if self.source == "header" else "a JSONPath such as $.id"
                raise ValueError(f"property is required for source '{self.source}' ({what})")
            if self.source == "header" and not HEADER_NAME.match(self.property):
                raise ValueError(f"property '{self.property}' is not a valid header name")
            if self.source == "json_body":
                _check_jsonpath(self.property, strict)
            if self.source == "tls_certificate" and self.property not in CERTIFICATE_PROPERTIES:
                raise ValueError(
                    f"property '{self.property}' is not a certificate property"
                    f" (valid: {', '.join(CERTIFICATE_PROPERTIES)})"
                )
            if self.source == "phase_time" and self.property not in PHASES:
                raise ValueError(f"property '{self.property}' is not a phase (valid: {', '.join(PHASES)})")
        elif self.source == "json_schema":
            if self.property not in (None, ""):
                _check_jsonpath(self.property, strict)
            _check_schema(self.target, strict)
            return self
        elif self.property not in (None, ""):
            raise ValueError(f"property is not used by source '{self.source}'; leave it empty")
        if self.comparison in UNARY:
            if self.target not in (None, ""):
                raise ValueError(f"comparison '{self.comparison}' takes no target")
            return self
        if self.target is None or self.target == "":
            raise ValueError(f"target is required for comparison '{self.comparison}'")
        numeric = self.comparison in ORDERING or self.source in ("status_code", "response_time", "phase_time")
        if numeric and self.comparison not in REGEX:
            _require_number(self.target, self.source)
        if self.comparison in REGEX:
            if not isinstance(self.target, str):
                raise ValueError("target of a regex comparison must be a string")
            _check_regex(self.target, strict)
        return self


def _require_number(target: Any, source: str) -> None:
    if isinstance(target, bool):
        raise ValueError(f"target must be a number for this comparison on '{source}'")
    if isinstance(target, int | float):
        return
    if isinstance(target, str):
        try:
            float(target)
            return
        except ValueError:
            pass
    raise ValueError(f"target must be a number for this comparison on '{source}', got {target!r}")


def _check_schema(schema: Any, strict: bool = False) -> None:
    """A ``json_schema`` target must itself be a valid JSON Schema (any draft ``jsonschema`` knows); when
    saving, its ``pattern``/``patternProperties`` regexes must run on RE2."""
    import jsonschema

    if not isinstance(schema, dict):
        raise ValueError('target of json_schema must be a JSON Schema object, e.g. {"type": "object"}')
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"target is not a valid JSON Schema: {exc.message}") from None
    if strict:
        try:
            for pattern in schema_patterns(schema):
                compile_pattern(pattern)
        except UnsupportedPattern as exc:
            raise ValueError(f"target: {exc}") from None


def saving(info: ValidationInfo) -> bool:
    """Whether this validation is of configuration being saved (see :data:`SAVING`)."""
    return isinstance(info.context, dict) and bool(info.context.get("saving"))


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (what it costs on the bus)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _check_property_length(value: str | None) -> None:
    """A JSONPath or header name is checked for length before it is parsed: a 10 MB JSONPath took
    ~30 s to parse."""
    if value is not None and len(value) > MAX_PROPERTY_CHARS:
        raise ValueError(f"property is {len(value):,} characters long; the limit is {MAX_PROPERTY_CHARS:,}")


def _check_regex(pattern: str, strict: bool, field: str = "target") -> None:
    """A regex target: RE2 must run it when saving; a stored one only has to be a regex at all, so a
    check saved before the RE2 rule still loads and its run says why it cannot be evaluated."""
    try:
        compile_pattern(pattern)
    except UnsupportedPattern as exc:
        if strict or len(pattern) > MAX_PATTERN_CHARS:
            raise ValueError(f"{field}: {exc}") from None
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{field} is not a valid regular expression: {error}") from None


@functools.lru_cache(maxsize=4096)
def _check_jsonpath(path: str, strict: bool = True) -> None:
    """Parse a JSONPath at config time so a typo is a 422, not a failing run.

    Cached: every message that carries a spec is validated again on arrival, and a parse costs far
    more than the rest of the message (~0.7 ms against ~30 µs).
    """
    if not path.startswith("$"):
        raise ValueError(f"property '{path}' must be a JSONPath starting with '$' (e.g. $.id)")
    try:
        parse_jsonpath(path)
    except UnsupportedPattern as exc:
        if strict:
            raise ValueError(f"property '{path}': {exc}") from None
    except Exception as exc:
        raise ValueError(f"property '{path}' is not a valid JSONPath: {exc}") from None


def _check_header_sizes(headers: dict[str, str]) -> None:
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"{len(headers)} headers; the limit is {MAX_HEADERS}")
    for name, value in headers.items():
        if len(name) > MAX_HEADER_NAME_CHARS:
            raise ValueError(f"header name '{name[:40]}…' is longer than {MAX_HEADER_NAME_CHARS} characters")
        if len(value) > MAX_HEADER_VALUE_CHARS:
            size = f"{len(value):,} characters long; the limit is {MAX_HEADER_VALUE_CHARS:,}"
            raise ValueError(f"header '{name}' value is {size}")


class RequestSpec(Frozen):
    """The HTTP request a check sends."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    #: Headers whose values are secrets although their names do not say so (``X-Tenant``): masked
    #: wherever the check is shown and encrypted at rest, like ``Authorization``.
    secret_headers: list[str] = Field(default_factory=list, max_length=100)
    body: dict[str, Any] | list[Any] | str | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_response_bytes: int = Field(default=1024 * 1024, ge=1024, le=16 * 1024 * 1024)
    verify_tls: bool = True

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if saving(info) and len(value) > MAX_URL_CHARS:
            raise ValueError(f"url is {len(value):,} characters long; the limit is {MAX_URL_CHARS:,}")
        if has_placeholders(value):
            return _templated_url(value)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must start with http:// or https://")
        if not parts.hostname:
            raise ValueError("url has no host")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("url has an invalid port") from None
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if saving(info):
            _check_header_sizes(value)
        for name, header_value in value.items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"'{name}' is not a valid header name")
            if "\n" in header_value or "\r" in header_value:
                raise ValueError(f"header '{name}' value must not contain line breaks")
            _placeholders(header_value, f"header '{name}'")
        return value

    @field_validator("secret_headers")
    @classmethod
    def _secret_header_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not HEADER_NAME.match(name):
                raise ValueError(f"'{name}' is not a valid header name")
        return value

    @field_validator("body")
    @classmethod
    def _body_templates(cls, value: Any, info: ValidationInfo) -> Any:
        if saving(info) and value is not None:
            size = len(value.encode()) if isinstance(value, str) else json_size(value)
            if size > MAX_BODY_BYTES:
                raise ValueError(f"body is {size:,} bytes; the limit is {MAX_BODY_BYTES:,}")
        for text in _strings(value):
            _placeholders(text, "body")
        return value

    def placeholders(self) -> list[Placeholder]:
        """Every ``{{ … }}`` in the URL, header values and body (string leaves of a JSON body)."""
        texts = [self.url, *self.headers.values(), *_strings(self.body)]
        return [placeholder for text in texts if has_placeholders(text) for placeholder in parse(text)]


def _strings(value: Any) -> list[str]:
    """The strings of a body: itself, or every string key and leaf of a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [
            text for key, item in value.items() for text in (key, *_strings(item)) if isinstance(text, str)
        ]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _placeholders(text: str, where: str) -> list[Placeholder]:
    try:
        return parse(text)
    except TemplateError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _templated_url(value: str) -> str:
    """A URL with placeholders: the syntax is checked now, the URL itself once rendered by the runner.
    A literal scheme before the first placeholder must still be http(s)."""
    found = _placeholders(value, "url")
    prefix = value[: found[0].start] if found else value
    if "://" in prefix and urlsplit(prefix).scheme not in ("http", "https"):
        raise ValueError("url must start with http:// or https://")
    if found and found[0].start == 0 and found[0].kind not in ("vars", "secrets"):
        raise ValueError("url must start with http(s):// or a {{ vars.<name> }} holding one")
    return value


ExtractionSource = Literal["json_body", "header", "text_body", "status_code"]


class Extraction(Frozen):
    """Saves one value of a step's response as ``steps.<step>.<name>`` for the steps after it.

    ``property`` is a JSONPath (``json_body``), a header name (``header``) or a regular expression
    (``text_body``: its first group, or the whole match when it has none); ``status_code`` takes none.
    """

    name: str
    source: ExtractionSource
    property: str | None = None

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> Extraction:
        strict = saving(info)
        if strict:
            _check_property_length(self.property)
        if not NAME_RE.fullmatch(self.name):
            raise ValueError(f"extraction name '{self.name}' must be letters, digits, '_' or '-'")
        if self.source == "status_code":
            if self.property not in (None, ""):
                raise ValueError("property is not used when extracting the status code; leave it empty")
            return self
        if not self.property:
            raise ValueError(f"property is required to extract from '{self.source}'")
        if self.source == "json_body":
            _check_jsonpath(self.property, strict)
        elif self.source == "header" and not HEADER_NAME.match(self.property):
            raise ValueError(f"property '{self.property}' is not a valid header name")
        elif self.source == "text_body":
            _check_regex(self.property, strict, "property")
        return self


class Step(Frozen):
    """One request of a multi-step check: sent, asserted, and mined for values the next steps use."""

    name: str
    request: RequestSpec
    assertions: list[Assertion] = Field(default_factory=list, max_length=100)
    extract: list[Extraction] = Field(default_factory=list, max_length=50)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError(
                f"step name '{value}' must start with a letter or '_' and hold letters, digits, '_' or '-'"
            )
        return value

    @field_validator("extract")
    @classmethod
    def _unique(cls, value: list[Extraction]) -> list[Extraction]:
        names = [extraction.name for extraction in value]
        if len(set(names)) != len(names):
            raise ValueError("extraction names must not repeat within a step")
        return value


#: How a sealed secret value starts (see ``services.common.secretbox``).
SEALED_PREFIX: Final = "sealed:v1:"

#: The name the single request of a check without ``steps`` goes by.
SINGLE_STEP: Final = "request"


OnEvent = Literal["failure", "recovery", "reminder", "degraded", "flapping"]
DEFAULT_ON: Final[tuple[OnEvent, ...]] = ("failure", "recovery")


class _Channel(Frozen):
    on: list[OnEvent] = Field(default_factory=lambda: list(DEFAULT_ON))
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        """YAML 1.1 reads the key ``on`` as ``True``; take it back as the field it means."""
        if isinstance(data, dict) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data


class _UrlChannel(_Channel):
    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith(SEALED_PREFIX) and not saving(info):  # stored: a webhook URL is a credential
            return value
        if saving(info) and len(value) > MAX_URL_CHARS:
            raise ValueError(f"url is {len(value):,} characters long; the limit is {MAX_URL_CHARS:,}")
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http(s) URL")
        return value.strip()


class SlackChannel(_UrlChannel):
    """Slack incoming webhook (Block Kit message)."""

    channel: Literal["slack"]


class DiscordChannel(_UrlChannel):
    """Discord webhook (embed)."""

    channel: Literal["discord"]


class TeamsChannel(_UrlChannel):
    """Microsoft Teams incoming webhook / workflow (Adaptive Card)."""

    channel: Literal["teams"]


class WebhookChannel(_UrlChannel):
    """Generic JSON webhook, signed with HMAC-SHA256 when a secret is set."""

    channel: Literal["webhook"]
    secret: str | None = None


class EmailChannel(_Channel):
    """Email through the SMTP server from settings."""

    channel: Literal["email"]
    to: list[str] = Field(min_length=1)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
                raise ValueError(f"'{address}' is not an email address")
        return value


class PagerDutyChannel(_Channel):
    """PagerDuty Events API v2."""

    channel: Literal["pagerduty"]
    routing_key: str = Field(min_length=1)
    url: str | None = None


class TelegramChannel(_Channel):
    """Telegram bot message (Bot API ``sendMessage``) to a chat, group or channel."""

    channel: Literal["telegram"]
    chat_id: str = Field(min_length=1, max_length=100)
    #: At most 200 characters as typed; stored sealed (longer).
    bot_token: str = Field(min_length=1, max_length=400)
    #: A self-hosted Bot API server; the public one when unset.
    api_url: str | None = None

    @field_validator("bot_token")
    @classmethod
    def _token_length(cls, value: str) -> str:
        if not value.startswith(SEALED_PREFIX) and len(value) > 200:
            raise ValueError("bot_token must be at most 200 characters")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("api_url must be an http(s) URL")
        return value.strip().rstrip("/")


AlertChannel = Annotated[
    SlackChannel
    | DiscordChannel
    | TeamsChannel
    | WebhookChannel
    | EmailChannel
    | PagerDutyChannel
    | TelegramChannel,
    Field(discriminator="channel"),
]


class Flapping(Frozen):
    """A check opening and resolving more than ``max_transitions`` times in ``window`` minutes flaps."""

    max_transitions: int = Field(default=4, ge=1)
    window: int = Field(default=30, ge=1)


class AlertPolicy(Frozen):
    """When an incident opens, resolves and re-notifies."""

    failure_threshold: int = Field(default=2, ge=1, le=1000)
    region_quorum: int | str = 1
    failing_for: int = Field(default=0, ge=0)
    confirm_from_another_region: bool = False
    recovery_threshold: int = Field(default=1, ge=1, le=1000)
    remind_every: int = Field(default=0, ge=0)
    max_reminders: int = Field(default=3, ge=0)
    degraded_response_time: float | None = Field(default=None, gt=0)
    flapping: Flapping = Field(default_factory=Flapping)

    @field_validator("region_quorum")
    @classmethod
    def _quorum(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("region_quorum must be at least 1")
            return value
        match = re.fullmatch(r"\s*(\d{1,3})\s*%\s*", value)
        if match and 0 < int(match.group(1)) <= 100:
            return f"{int(match.group(1))}%"
        if value.strip().isdigit() and int(value) >= 1:
            return int(value)
        raise ValueError("region_quorum must be a number ≥ 1 or a percentage like '50%'")

    def quorum_for(self, region_count: int) -> int:
        """How many of ``region_count`` regions must fail for a slot to count as failed."""
        if isinstance(self.region_quorum, int):
            return max(1, min(self.region_quorum, region_count))
        percent = int(self.region_quorum.rstrip("%"))
        return max(1, min(region_count, -(-region_count * percent // 100)))


DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WeeklyWindow(Frozen):
    """A recurring weekly window, in a named time zone."""

    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: time
    end: time
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value


class MaintenanceWindow(Frozen):
    """Alerts are held during a window; runs still happen. Either one-off (start/end) or weekly."""

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    weekly: WeeklyWindow | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        if self.weekly is not None:
            if self.start is not None or self.end is not None:
                raise ValueError("a window is either weekly or has start/end, not both")
            return self
        if self.start is None or self.end is None:
            raise ValueError("a one-off window needs both start and end")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` (timezone-aware) falls inside this window."""
        if self.weekly is None:
            assert self.start is not None
            assert self.end is not None
            return self.start <= instant < self.end
        local = instant.astimezone(ZoneInfo(self.weekly.tz))
        day = DAYS[local.weekday()]
        now = local.time().replace(tzinfo=None)
        start, end = self.weekly.start, self.weekly.end
        if start <= end:
            return day == self.weekly.day and start <= now < end
        following = DAYS[(DAYS.index(self.weekly.day) + 1) % 7]
        return (day == self.weekly.day and now >= start) or (day == following and now < end)


class CheckSpec(Frozen):
    """A check: the request, what its response must satisfy, where from, how often, whom to alert."""

    name: str = Field(min_length=1, max_length=200)
    request: RequestSpec
    assertions: list[Assertion] = Field(default_factory=list, max_length=100)
    regions: list[str] = Field(min_length=1, max_length=len(REGIONS))
    interval: int = Field(default=60, ge=1, le=MAX_INTERVAL)
    timeout: float = Field(default=10.0, gt=0, le=120)
    enabled: bool = True
    alerts: list[AlertChannel] = Field(default_factory=list, max_length=20)
    alert_policy: AlertPolicy = Field(default_factory=AlertPolicy)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    steps: list[Step] = Field(default_factory=list, max_length=20)
    teardown: list[Step] = Field(default_factory=list, max_length=10)
    teardown_fails_check: bool = False
    share_cookies: bool = False
    variables: dict[str, str] = Field(default_factory=dict, max_length=100)
    #: The check's own secrets, each sealed with the deployment key (never in clear here).
    secrets: dict[str, str] = Field(default_factory=dict, max_length=100)
    #: Copies of the global variables and (sealed) secrets the check uses, kept current by the api.
    global_variables: dict[str, str] = Field(default_factory=dict, max_length=200)
    global_secrets: dict[str, str] = Field(default_factory=dict, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _spec_size(cls, data: Any, info: ValidationInfo) -> Any:
        """Refuse a spec over :data:`MAX_SPEC_BYTES` of JSON before anything in it is parsed."""
        if saving(info) and isinstance(data, dict) and (size := json_size(data)) > MAX_SPEC_BYTES:
            raise ValueError(f"the check is {size:,} bytes of JSON; the limit is {MAX_SPEC_BYTES:,}")
        return data

    @model_validator(mode="before")
    @classmethod
    def _first_step_is_the_request(cls, data: Any) -> Any:
        """With ``steps``, ``request``/``assertions`` are the first step's (filled in when omitted), so a
        consumer that knows only single-request checks still reads a valid request."""
        if isinstance(data, dict) and data.get("steps") and "request" not in data:
            first = data["steps"][0]
            if isinstance(first, dict):
                data = {**data, "request": first.get("request"), "assertions": first.get("assertions", [])}
            elif isinstance(first, Step):
                data = {**data, "request": first.request, "assertions": first.assertions}
        return data

    @model_validator(mode="after")
    def _scenario(self) -> CheckSpec:
        if not self.steps:
            if self.teardown:
                raise ValueError("teardown needs steps: write the request as the first of 'steps'")
            _check_references([Step(name=SINGLE_STEP, request=self.request)], [], self.variables)
            return self
        first = self.steps[0]
        if self.request != first.request or self.assertions != first.assertions:
            raise ValueError("with steps, request and assertions are the first step's: set only steps")
        names = [step.name for step in (*self.steps, *self.teardown)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"step names must be unique: {', '.join(repeated)}")
        _check_references(self.steps, self.teardown, self.variables)
        return self

    def scenario(self) -> list[Step]:
        """The main steps in order: ``steps``, or the single request as one step named ``request``."""
        if self.steps:
            return list(self.steps)
        return [Step(name=SINGLE_STEP, request=self.request, assertions=self.assertions)]

    def is_multi_step(self) -> bool:
        """Whether runs of this check report steps (a check without ``steps`` reports as it always did)."""
        return bool(self.steps)

    def referenced(self, kind: Literal["vars", "secrets"]) -> set[str]:
        """The names of the variables (or secrets) the check's requests use."""
        return {
            placeholder.name
            for step in (*self.scenario(), *self.teardown)
            for placeholder in step.request.placeholders()
            if placeholder.kind == kind
        }

    @field_validator("variables", "global_variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not NAME_RE.fullmatch(name):
                raise ValueError(f"variable name '{name}' must be letters, digits, '_' or '-'")
        return value

    @field_validator("secrets", "global_secrets")
    @classmethod
    def _sealed(cls, value: dict[str, str]) -> dict[str, str]:
        for name, sealed in value.items():
            if not NAME_RE.fullmatch(name):
                raise ValueError(f"secret name '{name}' must be letters, digits, '_' or '-'")
            if not sealed.startswith(SEALED_PREFIX):
                raise ValueError(f"secret '{name}' must be sealed with the deployment key, never in clear")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        unknown = [region for region in value if region not in REGIONS]
        if unknown:
            raise ValueError(f"unknown region(s): {', '.join(unknown)}")
        if len(set(value)) != len(value):
            raise ValueError("regions must not repeat")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [tag.strip() for tag in value]
        for tag in tags:
            if not TAG.match(tag):
                raise ValueError(
                    f"tag '{tag}' must be 1-64 letters, digits or ':_.-', starting with a letter or digit"
                )
        if len(set(tags)) != len(tags):
            raise ValueError("tags must not repeat")
        return tags


def _check_references(steps: list[Step], teardown: list[Step], variables: dict[str, str]) -> None:
    """Every ``{{ steps.<step>.<name> }}`` names an extraction of an *earlier* main step (teardown may use
    any main step's). Variables and secrets may also be global, so the api checks those."""
    available: dict[str, set[str]] = {}
    for label, group in (("steps", steps), ("teardown", teardown)):
        for index, step in enumerate(group):
            for placeholder in step.request.placeholders():
                if placeholder.kind != "steps":
                    continue
                where = f"{label}[{index}] '{step.name}'"
                if placeholder.scope not in available:
                    known = ", ".join(sorted(available)) or "none yet"
                    raise ValueError(
                        f"{where}: {{{{ {placeholder.reference} }}}} refers to no earlier step"
                        f" (earlier steps: {known})"
                    )
                if placeholder.name not in available[placeholder.scope]:
                    known = ", ".join(sorted(available[placeholder.scope])) or "none"
                    raise ValueError(
                        f"{where}: step '{placeholder.scope}' extracts no '{placeholder.name}'"
                        f" (it extracts: {known})"
                    )
            if label == "steps":
                available[step.name] = {extraction.name for extraction in step.extract}
