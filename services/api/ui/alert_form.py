"""The alert policy and maintenance window fields, shared by the check form and the global settings form.

Values stay text until validated, so invalid input comes back exactly as typed. Field names:
``policy-<field>`` for the policy, ``maintenance-<key>-<part>`` for window rows (``maintenance_row`` lists
the keys in order). Errors are keyed ``policy.<field>`` and ``maintenance:<key>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from contracts.v1.checks import DAYS, AlertPolicy, MaintenanceWindow
from services.api.alert_settings import parse_alert_settings

EVENTS: Final = ("failure", "recovery", "reminder", "degraded", "flapping")
DAY_LABELS: Final = dict(
    zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
WINDOW_KINDS: Final = {"once": "One-off (UTC)", "weekly": "Weekly"}
#: Offered in the time zone box; any IANA name is accepted.
TIME_ZONES: Final = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Stockholm",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Sydney",
)
POLICY_LABELS: Final = {
    "failure_threshold": "failure threshold",
    "region_quorum": "region quorum",
    "failing_for": "failing for",
    "recovery_threshold": "recovery threshold",
    "remind_every": "remind every",
    "max_reminders": "max reminders",
    "degraded_response_time": "degraded response time",
    "flapping_max_transitions": "flapping transitions",
    "flapping_window": "flapping window",
}
WHOLE_NUMBERS: Final = frozenset(POLICY_LABELS) - {"region_quorum", "degraded_response_time"}
LOCAL_FORMAT: Final = "%Y-%m-%dT%H:%M"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _one(data: Any, name: str, default: str = "") -> str:
    value = data.get(name)
    return value if isinstance(value, str) else default


@dataclass
class PolicyForm:
    """The alert policy as typed (defaults: :class:`AlertPolicy`'s)."""

    failure_threshold: str = ""
    region_quorum: str = ""
    failing_for: str = ""
    confirm_from_another_region: bool = False
    recovery_threshold: str = ""
    remind_every: str = ""
    max_reminders: str = ""
    degraded_response_time: str = ""
    flapping_max_transitions: str = ""
    flapping_window: str = ""

    @classmethod
    def from_policy(cls, policy: AlertPolicy | dict[str, Any] | None) -> PolicyForm:
        """The fields for a stored policy (``None``: the defaults)."""
        if not isinstance(policy, AlertPolicy):
            policy = AlertPolicy.model_validate(policy or {})
        return cls(
            failure_threshold=_text(policy.failure_threshold),
            region_quorum=_text(policy.region_quorum),
            failing_for=_text(policy.failing_for),
            confirm_from_another_region=policy.confirm_from_another_region,
            recovery_threshold=_text(policy.recovery_threshold),
            remind_every=_text(policy.remind_every),
            max_reminders=_text(policy.max_reminders),
            degraded_response_time=_text(policy.degraded_response_time),
            flapping_max_transitions=_text(policy.flapping.max_transitions),
            flapping_window=_text(policy.flapping.window),
        )

    @classmethod
    def from_post(cls, data: Any) -> PolicyForm:
        """The fields as posted (``policy-<field>``)."""
        values = {name: _one(data, f"policy-{name}") for name in POLICY_LABELS}
        return cls(
            **values, confirm_from_another_region=_one(data, "policy-confirm_from_another_region") == "on"
        )

    def to_data(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The ``alert_policy`` JSON, and errors found reading the text (``policy.<field>``)."""
        errors: dict[str, str] = {}
        data: dict[str, Any] = {"confirm_from_another_region": self.confirm_from_another_region}
        flapping: dict[str, Any] = {}
        for item in fields(self):
            name = item.name
            if name == "confirm_from_another_region":
                continue
            text = str(getattr(self, name)).strip()
            value: Any = text
            if name in WHOLE_NUMBERS:
                if not text.lstrip("-").isdigit():
                    errors[f"policy.{name}"] = "enter a whole number"
                    continue
                value = int(text)
            elif name == "degraded_response_time":
                if not text:
                    value = None
                else:
                    try:
                        value = float(text)
                    except ValueError:
                        errors[f"policy.{name}"] = "enter milliseconds, e.g. 800, or leave it empty"
                        continue
            elif not text:
                errors[f"policy.{name}"] = "enter a number of regions or a percentage such as 50%"
                continue
            if name.startswith("flapping_"):
                flapping[name.removeprefix("flapping_")] = value
            else:
                data[name] = value
        data["flapping"] = flapping
        return data, errors

    @property
    def summary(self) -> str:
        """``defaults`` when nothing differs from the defaults, else the policy in one line."""
        data, errors = self.to_data()
        if errors:
            return "has errors"
        try:
            return policy_label(AlertPolicy.model_validate(data))
        except ValidationError:
            return "has errors"


@dataclass
class MaintenanceRow:
    """One maintenance window row: one-off (UTC start/end) or weekly (day, times, time zone)."""

    key: str
    kind: str = "once"
    start: str = ""
    end: str = ""
    day: str = "sun"
    start_time: str = "02:00"
    end_time: str = "04:00"
    tz: str = "UTC"

    @classmethod
    def from_window(cls, key: str, window: MaintenanceWindow | dict[str, Any]) -> MaintenanceRow:
        """A row for a stored window."""
        if not isinstance(window, MaintenanceWindow):
            window = MaintenanceWindow.model_validate(window)
        if window.weekly is not None:
            weekly = window.weekly
            return cls(key, "weekly", "", "", weekly.day, _hhmm(weekly.start), _hhmm(weekly.end), weekly.tz)
        assert window.start is not None
        assert window.end is not None
        return cls(
            key,
            "once",
            window.start.astimezone(UTC).strftime(LOCAL_FORMAT),
            window.end.astimezone(UTC).strftime(LOCAL_FORMAT),
        )

    @classmethod
    def from_post(cls, data: Any, key: str) -> MaintenanceRow:
        """Row ``key`` as posted (also used to redraw a row whose kind changed)."""
        kind = _one(data, f"maintenance-{key}-kind", "once")
        day = _one(data, f"maintenance-{key}-day", "sun")
        return cls(
            key,
            kind if kind in WINDOW_KINDS else "once",
            _one(data, f"maintenance-{key}-start"),
            _one(data, f"maintenance-{key}-end"),
            day if day in DAY_LABELS else "sun",
            _one(data, f"maintenance-{key}-from", "02:00"),
            _one(data, f"maintenance-{key}-to", "04:00"),
            _one(data, f"maintenance-{key}-tz", "UTC") or "UTC",
        )

    def to_data(self) -> tuple[dict[str, Any] | None, str | None]:
        """The window JSON, or an error reading the text."""
        if self.kind == "weekly":
            weekly = {"day": self.day, "start": self.start_time, "end": self.end_time, "tz": self.tz.strip()}
            return {"weekly": weekly}, None
        moments = []
        for label, text in (("start", self.start), ("end", self.end)):
            try:
                moment = datetime.fromisoformat(text.strip())
            except ValueError:
                return None, f"enter the {label} as a UTC date and time"
            moments.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        return {"start": moments[0].isoformat(), "end": moments[1].isoformat()}, None


def _hhmm(value: Any) -> str:
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:5] if text.endswith(":00") and len(text) == 8 else text


@dataclass
class AlertFields:
    """The policy and the maintenance windows, as one form part. ``present`` is false when a post did not
    include this part at all (an older form): then the stored values are kept."""

    policy: PolicyForm = field(default_factory=lambda: PolicyForm.from_policy(None))
    maintenance: list[MaintenanceRow] = field(default_factory=list)
    present: bool = True

    @classmethod
    def from_spec(cls, spec: dict[str, Any], key: Callable[[], str]) -> AlertFields:
        """The part for a stored spec (or the global settings), ``key()`` giving row keys."""
        return cls(
            PolicyForm.from_policy(spec.get("alert_policy")),
            [MaintenanceRow.from_window(key(), window) for window in spec.get("maintenance") or []],
        )

    @classmethod
    def from_post(cls, data: Any) -> AlertFields:
        """The part as posted; absent unless the ``alerting`` marker is in the post."""
        if _one(data, "alerting") != "1":
            return cls(present=False)
        keys = [key for key in data.getall("maintenance_row", []) if isinstance(key, str) and key]
        return cls(PolicyForm.from_post(data), [MaintenanceRow.from_post(data, key) for key in keys])

    def to_data(self) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
        """``alert_policy`` JSON, ``maintenance`` JSON, and the errors found reading the text."""
        policy, errors = self.policy.to_data()
        windows = []
        for row in self.maintenance:
            window, error = row.to_data()
            if error is not None:
                errors[f"maintenance:{row.key}"] = error
            elif window is not None:
                windows.append(window)
        return policy, windows, errors

    def form_key(self, spec_field: str) -> str:
        """The form key of a spec error under ``alert_policy.…`` or ``maintenance.N.…``."""
        parts = spec_field.split(".")
        if parts[0] == "alert_policy":
            rest = parts[1:]
            if rest[:1] == ["flapping"] and len(rest) > 1:
                return f"policy.flapping_{rest[1]}"
            return f"policy.{rest[0]}" if rest and rest[0] in POLICY_LABELS else "policy"
        if parts[0] == "maintenance" and len(parts) > 1 and parts[1].isdigit():
            index = int(parts[1])
            if index < len(self.maintenance):
                return f"maintenance:{self.maintenance[index].key}"
        return "maintenance"

    def message(self, spec_field: str, message: str) -> str:
        """An error message that names the part of a window it is about (``end: …``)."""
        last = spec_field.split(".")[-1]
        if spec_field.startswith("maintenance.") and last in ("start", "end", "day", "tz"):
            return f"{'time zone' if last == 'tz' else last}: {message}"
        return message

    def validate(self) -> tuple[AlertPolicy | None, list[MaintenanceWindow] | None, dict[str, str]]:
        """The global policy and windows this form describes, or the errors keyed by form field."""
        policy_data, windows_data, errors = self.to_data()
        policy, windows, problems = parse_alert_settings(policy_data, windows_data)
        for item in problems:
            errors.setdefault(self.form_key(item["field"]), self.message(item["field"], item["message"]))
        if errors:
            return None, None, errors
        return policy, windows, {}

    @staticmethod
    def has_errors(errors: dict[str, str], part: str) -> bool:
        """Whether any of ``errors`` belongs to ``part`` (``policy``/``maintenance``): then it is open."""
        return any(key.startswith(part) for key in errors)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe_policy(policy: AlertPolicy, region_count: int | None = None) -> str:
    """The policy in one line: ``opens after 2 failed slots · any region · resolves after 1 passing``."""
    parts = [f"opens after {_plural(policy.failure_threshold, 'failed slot')}"]
    quorum = policy.region_quorum
    if quorum == 1:
        parts.append("any region")
    elif isinstance(quorum, int):
        of = f" of {region_count}" if region_count else ""
        parts.append(f"{policy.quorum_for(region_count) if region_count else quorum}{of} regions failing")
    elif quorum == "100%":
        parts.append("all regions failing")
    else:
        needed = f" ({policy.quorum_for(region_count)} of {region_count})" if region_count else ""
        parts.append(f"{quorum} of regions failing{needed}")
    if policy.failing_for:
        parts.append(f"for at least {policy.failing_for} min")
    if policy.confirm_from_another_region:
        parts.append("confirmed from another region")
    parts.append(f"resolves after {policy.recovery_threshold} passing")
    if policy.remind_every:
        parts.append(f"reminds every {policy.remind_every} min (at most {policy.max_reminders})")
    if policy.degraded_response_time is not None:
        parts.append(f"degraded above {_text(policy.degraded_response_time)} ms")
    if policy.flapping != AlertPolicy().flapping:
        flapping = policy.flapping
        parts.append(f"flapping at {flapping.max_transitions} changes in {flapping.window} min")
    return " · ".join(parts)


def policy_label(policy: AlertPolicy) -> str:
    """``defaults`` for the default policy, else :func:`describe_policy`."""
    return "defaults" if policy == AlertPolicy() else describe_policy(policy)


def describe_window(window: MaintenanceWindow) -> str:
    """A window in words: ``2025-06-01 02:00 → 04:00 UTC`` or ``every Sunday 02:00–04:00 Europe/Paris``."""
    if window.weekly is not None:
        weekly = window.weekly
        return f"every {DAY_LABELS[weekly.day]} {_hhmm(weekly.start)}–{_hhmm(weekly.end)} {weekly.tz}" + (
            " (into the next day)" if weekly.end <= weekly.start else ""
        )
    assert window.start is not None
    assert window.end is not None
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start.strftime('%Y-%m-%d %H:%M')} → {until} UTC"
