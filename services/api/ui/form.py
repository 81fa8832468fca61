"""The check form: HTML form fields ↔ ``CheckSpec`` JSON, and validation errors placed beside their field.

Repeated rows (headers, assertions, channels, maintenance windows) carry a random row key
(``assertion-<key>-source``), so rows can be added and removed in the browser in any order; ``<kind>_row``
lists the keys in order.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from contracts.v1.checks import (
    COMPARISONS_BY_SOURCE,
    DEFAULT_ON,
    METHODS,
    ORDERING,
    REGEX,
    SOURCES_WITH_PROPERTY,
    UNARY,
    CheckSpec,
)
from services.api.checks import parse_spec
from services.api.ui.alert_form import EVENTS, AlertFields
from services.api.ui.steps_form import EXTRACT_SOURCES, ScenarioFields
from services.common.channels import CHANNELS as CHANNEL_INFO
from services.common.errors import DomainError

SOURCES: Final = {
    "status_code": "Status code",
    "response_time": "Response time",
    "header": "Header",
    "json_body": "JSON body",
    "text_body": "Text body",
    "json_schema": "JSON Schema",
    "tls_certificate": "TLS certificate",
    "phase_time": "Phase time",
}
EXTRACTS: Final = EXTRACT_SOURCES
COMPARISON_LABELS: Final = {
    "equals": "equals",
    "not_equals": "does not equal",
    "greater_than": "greater than",
    "less_than": "less than",
    "greater_or_equal": "greater than or equal",
    "less_or_equal": "less than or equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "matches": "matches regex",
    "not_matches": "does not match regex",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "is_null": "is null",
    "is_not_null": "is not null",
    "exists": "exists",
    "not_exists": "does not exist",
    "matches_schema": "matches schema",
}
INTERVALS: Final = (
    (10, "10 seconds"),
    (30, "30 seconds"),
    (60, "1 minute"),
    (300, "5 minutes"),
    (600, "10 minutes"),
    (900, "15 minutes"),
    (1800, "30 minutes"),
    (3600, "1 hour"),
    (21600, "6 hours"),
    (43200, "12 hours"),
    (86400, "1 day"),
    (604800, "1 week"),
)
#: Each channel kind's label (from the channel registry; the first is the default of a new row).
CHANNELS: Final = {kind: info.label for kind, info in CHANNEL_INFO.items()}
DEFAULT_CHANNEL: Final = next(iter(CHANNEL_INFO))
BODY_MODES: Final = {"none": "No body", "json": "JSON", "text": "Raw text"}


def row_key() -> str:
    """A fresh key for a new form row."""
    return secrets.token_hex(4)


def comparisons_for(source: str) -> list[tuple[str, str]]:
    """The comparisons offered for ``source``, with labels (exactly those the spec accepts)."""
    return [(name, COMPARISON_LABELS[name]) for name in COMPARISONS_BY_SOURCE.get(source, ())]


@dataclass
class AssertionRow:
    """One assertion row as the form shows it."""

    key: str
    source: str = "status_code"
    prop: str = ""
    comparison: str = "equals"
    target: str = ""

    @property
    def has_property(self) -> bool:
        """Whether this source takes a property (header name or JSONPath)."""
        return self.source in SOURCES_WITH_PROPERTY

    @property
    def has_target(self) -> bool:
        """Whether the comparison takes a target."""
        return self.comparison not in UNARY

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        """The comparisons valid for this row's source."""
        return comparisons_for(self.source)

    def normalised(self) -> AssertionRow:
        """The row with a comparison valid for its source (the first one if the source changed)."""
        valid = COMPARISONS_BY_SOURCE.get(self.source)
        if valid is None:
            self.source = "status_code"
            valid = COMPARISONS_BY_SOURCE["status_code"]
        if self.comparison not in valid:
            self.comparison = valid[0]
        return self


@dataclass
class HeaderRow:
    """One request header row."""

    key: str
    name: str = ""
    value: str = ""


@dataclass
class ChannelRow:
    """One alert channel row."""

    key: str
    channel: str = DEFAULT_CHANNEL
    destination: str = ""
    secret: str = ""
    on: list[str] = field(default_factory=lambda: list(DEFAULT_ON))

    @classmethod
    def from_post(cls, data: Any, key: str) -> ChannelRow:
        """Row ``key`` as posted (also used to redraw a row whose type changed)."""
        kind = data.get(f"channel-{key}-channel")
        return cls(
            key,
            kind if isinstance(kind, str) and kind in CHANNELS else DEFAULT_CHANNEL,
            _str(data.get(f"channel-{key}-destination")),
            _str(data.get(f"channel-{key}-secret")),
            [event for event in EVENTS if event in data.getall(f"channel-{key}-on", [])],
        )


@dataclass
class CheckForm:
    """Everything the check form shows, as text, so invalid input comes back exactly as typed."""

    name: str = ""
    method: str = "GET"
    url: str = ""
    headers: list[HeaderRow] = field(default_factory=list)
    body_mode: str = "none"
    body: str = ""
    assertions: list[AssertionRow] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    interval: str = "60"
    interval_custom: str = ""
    timeout: str = "10"
    channels: list[ChannelRow] = field(default_factory=list)
    enabled: bool = True
    alerting: AlertFields = field(default_factory=AlertFields)
    tags: str = ""
    scenario: ScenarioFields = field(default_factory=ScenarioFields)

    @classmethod
    def blank(cls, default_regions: list[str]) -> CheckForm:
        """A new check: one status assertion and the regions that have a live runner preselected."""
        return cls(
            assertions=[AssertionRow(row_key(), "status_code", "", "equals", "200")],
            headers=[HeaderRow(row_key())],
            regions=default_regions,
        )

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> CheckForm:
        """The form for an existing (redacted) spec."""
        request = spec.get("request") or {}
        body = request.get("body")
        if body is None:
            mode, text = "none", ""
        elif isinstance(body, str):
            mode, text = "text", body
        else:
            mode, text = "json", json.dumps(body, indent=2, ensure_ascii=False)
        interval = int(spec.get("interval", 60))
        presets = {seconds for seconds, _ in INTERVALS}
        channels = []
        for channel in spec.get("alerts") or []:
            kind = channel.get("channel", DEFAULT_CHANNEL)
            info = CHANNEL_INFO.get(kind)
            destination = info.destination_text(channel) if info else str(channel.get("url") or "")
            secret = channel.get(info.form_secret) if info and info.form_secret else None
            on = channel.get("on")
            channels.append(
                ChannelRow(
                    row_key(),
                    kind,
                    destination,
                    secret or "",
                    list(DEFAULT_ON) if on is None else [event for event in EVENTS if event in on],
                )
            )
        return cls(
            name=spec.get("name", ""),
            method=request.get("method", "GET"),
            url=request.get("url", ""),
            headers=[HeaderRow(row_key(), n, v) for n, v in (request.get("headers") or {}).items()],
            body_mode=mode,
            body=text,
            assertions=[
                AssertionRow(
                    row_key(),
                    item["source"],
                    item.get("property") or "",
                    item["comparison"],
                    target_text(item.get("target"), item["source"], item["comparison"]),
                )
                for item in spec.get("assertions") or []
            ],
            regions=list(spec.get("regions") or []),
            interval=str(interval) if interval in presets else "custom",
            interval_custom="" if interval in presets else str(interval),
            timeout=_number_text(spec.get("timeout", 10)),
            channels=channels,
            enabled=bool(spec.get("enabled", True)),
            alerting=AlertFields.from_spec(spec, row_key),
            tags=", ".join(spec.get("tags") or []),
            scenario=ScenarioFields.from_spec(spec, assertion_row_of),
        )

    @classmethod
    def from_post(cls, data: Any) -> CheckForm:
        """The form as posted (``data`` is a multi-dict: ``get`` and ``getall``)."""

        def one(name: str, default: str = "") -> str:
            value = data.get(name)
            return value if isinstance(value, str) else default

        def keys(kind: str) -> list[str]:
            return [key for key in data.getall(f"{kind}_row", []) if isinstance(key, str) and key]

        return cls(
            name=one("name"),
            method=one("method", "GET"),
            url=one("url"),
            headers=[HeaderRow(k, one(f"header-{k}-name"), one(f"header-{k}-value")) for k in keys("header")],
            body_mode=one("body_mode", "none"),
            body=one("body"),
            assertions=[
                AssertionRow(
                    k,
                    one(f"assertion-{k}-source", "status_code"),
                    one(f"assertion-{k}-property"),
                    one(f"assertion-{k}-comparison", "equals"),
                    one(f"assertion-{k}-target"),
                ).normalised()
                for k in keys("assertion")
            ],
            regions=[region for region in data.getall("regions", []) if isinstance(region, str)],
            interval=one("interval", "60"),
            interval_custom=one("interval_custom"),
            timeout=one("timeout", "10"),
            channels=[ChannelRow.from_post(data, k) for k in keys("channel")],
            enabled=one("enabled", "on") == "on",
            alerting=AlertFields.from_post(data),
            tags=one("tags"),
            scenario=ScenarioFields.from_post(data, posted_assertion_row),
        )

    def to_spec_data(self, stored: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """The spec JSON this form describes (fields the form does not show are kept from ``stored``),
        and the errors found while reading the text fields (keyed like :meth:`validate`'s)."""
        errors: dict[str, str] = {}
        base = dict(stored or {})
        request = dict(base.get("request") or {})
        headers: dict[str, str] = {}
        for row in self.headers:
            name = row.name.strip()
            if not name and not row.value.strip():
                continue
            if not name:
                errors[f"header:{row.key}"] = "header name is required"
                continue
            if name in headers:
                errors[f"header:{row.key}"] = f"header '{name}' is repeated"
            headers[name] = row.value
        body: Any = None
        if self.body_mode == "json" and self.body.strip():
            try:
                body = json.loads(self.body)
            except json.JSONDecodeError as exc:
                errors["body"] = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            else:
                if not isinstance(body, dict | list):
                    errors["body"] = "a JSON body must be an object {…} or an array […]"
                    body = None
        elif self.body_mode == "text" and self.body:
            body = self.body
        request.update({"method": self.method, "url": self.url.strip(), "headers": headers, "body": body})
        interval: Any = self.interval_custom.strip() if self.interval == "custom" else self.interval
        if not _is_number(interval):
            errors["interval"] = "enter the interval in seconds, e.g. 120"
            interval = 60
        timeout: Any = self.timeout.strip()
        if not _is_number(timeout):
            errors["timeout"] = "enter the timeout in seconds, e.g. 10"
            timeout = 10
        alerts = []
        stored_alerts = list(base.get("alerts") or [])
        for index, chan in enumerate(self.channels):
            channel: dict[str, Any] = {"channel": chan.channel, "on": list(chan.on)}
            info = CHANNEL_INFO[chan.channel]
            before = stored_alerts[index] if index < len(stored_alerts) else {}
            if before.get("channel") == chan.channel:
                # what the form does not show (a channel's name, PagerDuty's endpoint) is kept
                shown = {"channel", "on", info.destination, info.form_secret}
                channel.update({key: value for key, value in before.items() if key not in shown and value})
            channel[info.destination] = info.destination_value(chan.destination)
            if info.form_secret and chan.secret:
                channel[info.form_secret] = chan.secret
            alerts.append(channel)
        base.update(
            {
                "name": self.name,
                "request": request,
                "assertions": [assertion_data(row) for row in self.assertions],
                "regions": self.regions,
                "interval": float(interval),
                "timeout": float(timeout),
                "alerts": alerts,
                "enabled": self.enabled,
                "tags": split_tags(self.tags),
            }
        )
        if float(interval).is_integer():
            base["interval"] = int(float(interval))
        if self.alerting.present:
            policy, windows, alert_errors = self.alerting.to_data()
            base.update({"alert_policy": policy, "maintenance": windows})
            errors.update(alert_errors)
        errors.update(self.scenario.apply(base, assertion_data))
        return base, errors

    def validate(
        self, stored: dict[str, Any] | None = None, box: Any = None
    ) -> tuple[CheckSpec | None, dict[str, str]]:
        """The ``CheckSpec`` (or ``None``) and every error, keyed by form field: ``name``, ``tags``, ``url``,
        ``method``, ``headers``, ``body``, ``regions``, ``interval``, ``timeout``, ``assertion:<key>``,
        ``header:<key>``, ``channel:<key>``, ``policy.<field>``, ``maintenance:<key>``, or ``general``."""
        data, errors = self.to_spec_data(stored)
        try:
            spec = parse_spec(data, stored, box)
        except DomainError as exc:
            for item in exc.errors:
                key = self._form_key(item["field"])
                errors.setdefault(key, self.alerting.message(item["field"], item["message"]))
            return None, errors
        return (None if errors else spec), errors

    def _form_key(self, spec_field: str) -> str:
        parts = spec_field.split(".")
        head = parts[0]
        if head == "request" and len(parts) > 1:
            return {"url": "url", "method": "method", "headers": "headers", "body": "body"}.get(
                parts[1], "general"
            )
        if head in ("assertions", "alerts") and len(parts) > 1 and parts[1].isdigit():
            rows: list[Any] = self.assertions if head == "assertions" else self.channels
            index = int(parts[1])
            if index < len(rows):
                return f"{'assertion' if head == 'assertions' else 'channel'}:{rows[index].key}"
        if head in ("name", "regions", "interval", "timeout", "assertions", "tags"):
            return head
        if head in ("alert_policy", "maintenance"):
            return self.alerting.form_key(spec_field)
        if head in ("steps", "teardown", "variables"):
            return self.scenario.form_key(parts)
        return "general"


def assertion_data(row: AssertionRow) -> dict[str, Any]:
    """An assertion row as the spec takes it."""
    return {
        "source": row.source,
        "property": row.prop.strip() or None,
        "comparison": row.comparison,
        "target": parse_target(row.target, row.source, row.comparison),
    }


def assertion_row_of(item: dict[str, Any]) -> AssertionRow:
    """The form row of a stored assertion."""
    return AssertionRow(
        row_key(),
        item["source"],
        item.get("property") or "",
        item["comparison"],
        target_text(item.get("target"), item["source"], item["comparison"]),
    )


def posted_assertion_row(data: Any, key: str) -> AssertionRow:
    """Assertion row ``key`` as posted."""

    def one(name: str, default: str = "") -> str:
        value = data.get(name)
        return value if isinstance(value, str) else default

    return AssertionRow(
        key,
        one(f"assertion-{key}-source", "status_code"),
        one(f"assertion-{key}-property"),
        one(f"assertion-{key}-comparison", "equals"),
        one(f"assertion-{key}-target"),
    ).normalised()


def split_tags(text: str) -> list[str]:
    """Tags as typed (comma- or space-separated) → the list the spec takes, repeats dropped."""
    return list(dict.fromkeys(part for part in re.split(r"[,\s]+", text) if part))


def parse_target(text: str, source: str, comparison: str) -> Any:
    """A target as typed → the typed value the spec expects: numbers for status and time, JSON
    literals (``false``, ``42``, ``null``, ``"42"``) for JSON body values, text otherwise."""
    if comparison in UNARY:
        return None
    stripped = text.strip()
    if source == "json_schema":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    if comparison in REGEX or source in ("header", "text_body"):
        return text
    if source in ("status_code", "response_time") or comparison in ORDERING:
        number = _number(stripped)
        return number if number is not None else stripped
    if source == "json_body":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    return text


def target_text(target: Any, source: str, comparison: str) -> str:
    """A stored target as the user would type it (inverse of :func:`parse_target`)."""
    if target is None or comparison in UNARY:
        return ""
    if source == "json_schema":
        return json.dumps(target)
    if source == "json_body" and comparison not in REGEX:
        if isinstance(target, str):
            try:
                json.loads(target)
            except json.JSONDecodeError:
                return target
            return json.dumps(target)
        return json.dumps(target)
    return (
        _number_text(target)
        if isinstance(target, int | float) and not isinstance(target, bool)
        else str(target)
    )


def _number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text else value


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_number(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


__all__ = ["BODY_MODES", "CHANNELS", "INTERVALS", "METHODS", "SOURCES", "CheckForm"]
