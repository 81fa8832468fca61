"""View models: rows and run details shaped for the templates (all text still escaped by Jinja)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from contracts.v1.regions import display_name
from services.api.queries import run_view
from services.api.stats import RunMark, TableCheck
from services.common.channels import CHANNELS
from services.common.db.models import Check, Incident, Run
from services.common.redaction import redact_url

PHASES: Final = (
    ("dns_ms", "DNS"),
    ("connect_ms", "Connect"),
    ("tls_ms", "TLS"),
    ("ttfb_ms", "Waiting (TTFB)"),
    ("download_ms", "Download"),
)


def check_state(row: Check | TableCheck, marks: list[RunMark], incident: Incident | None) -> str:
    """paused / failing / passing / pending (no runs yet), as the checks table shows it."""
    if not row.enabled:
        return "paused"
    if incident is not None:
        return "failing"
    if not marks:
        return "pending"
    latest_per_region: dict[str, str] = {}
    for mark in marks:
        latest_per_region.setdefault(mark.region, mark.status)
    return "failing" if any(status != "passed" for status in latest_per_region.values()) else "passing"


@dataclass(frozen=True, slots=True)
class MarkView:
    """A result mark with its tooltip worked out once (the table shows it twice)."""

    run_id: Any
    status: str
    title: str


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One line of the checks table. A slotted object, not a dict: Jinja reads attributes straight
    away but tries (and fails) ``getattr`` on a dict before indexing it, and a 1,000-row page does
    that tens of thousands of times."""

    id: str
    name: str
    method: str
    url: str
    enabled: bool
    state: str
    incident: Incident | None
    marks: list[MarkView]
    interval: Any
    regions: list[tuple[str, str]]
    tags: list[str]


def check_row(row: Check | TableCheck, marks: list[RunMark], incident: Incident | None) -> CheckRow:
    """One line of the checks table (the URL redacted; the other fields hold no secret)."""
    spec = row.spec
    request = spec.get("request") or {}
    return CheckRow(
        id=str(row.id),
        name=row.name,
        method=request.get("method", "GET"),
        url=redact_url(request.get("url", "")),
        enabled=row.enabled,
        state=check_state(row, marks, incident),
        incident=incident,
        marks=[MarkView(mark.run_id, mark.status, mark_title(mark)) for mark in reversed(marks[:3])],
        interval=spec.get("interval", 60),
        regions=[(code, display_name(code)) for code in spec.get("regions") or []],
        tags=list(spec.get("tags") or []),
    )


def mark_title(mark: RunMark) -> str:
    """Tooltip of a result mark: region, status and time."""
    parts = [mark.region_name, mark.status]
    if mark.status_code is not None:
        parts.append(f"HTTP {mark.status_code}")
    if mark.total_ms is not None:
        parts.append(f"{mark.total_ms:.0f} ms")
    if mark.error_class and mark.status != "failed":
        parts.append(mark.error_class)
    return " · ".join(parts)


def waterfall(timings: dict[str, Any]) -> list[dict[str, Any]]:
    """The request phases as bars: offset and width in % of the total time."""
    phases = [(label, key, timings.get(key)) for key, label in PHASES]
    known = sum(value for _, _, value in phases if isinstance(value, int | float))
    total = max(float(timings.get("total_ms") or 0.0), known, 0.001)
    out = []
    offset = 0.0
    for label, key, value in phases:
        if not isinstance(value, int | float):
            out.append({"label": label, "key": key, "ms": None, "offset": offset, "width": 0.0})
            continue
        width = 100.0 * value / total
        out.append({"label": label, "key": key, "ms": value, "offset": offset, "width": max(width, 0.4)})
        offset = min(100.0, offset + width)
    return out


def step_waterfall(steps: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A multi-step run's steps as bars one after another (offset and width in % of the steps' sum),
    each with its assertions (failed first), its phases and what it extracted."""
    if not steps:
        return []
    times = [float((step.get("timings") or {}).get("total_ms") or 0.0) for step in steps]
    total = max(sum(times), 0.001)
    out = []
    offset = 0.0
    for step, ms in zip(steps, times, strict=True):
        width = 100.0 * ms / total
        response = step.get("response") or {}
        request = step.get("request") or {}
        assertions = sorted(step.get("assertions") or [], key=lambda item: bool(item.get("passed")))
        out.append(
            {
                "name": step.get("name"),
                "teardown": bool(step.get("teardown")),
                "status": step.get("status"),
                "ms": ms if step.get("status") != "skipped" else None,
                "offset": offset,
                "width": max(width, 0.4) if step.get("status") != "skipped" else 0.0,
                "error": step.get("error"),
                "assertions": assertions,
                "failed_count": sum(1 for item in assertions if not item.get("passed")),
                "phases": waterfall(step.get("timings") or {}),
                "extracted": sorted((step.get("extracted") or {}).items()),
                "request_method": request.get("method"),
                "request_url": request.get("url"),
                "status_code": response.get("status_code"),
                "body": pretty_body(response.get("body"))[0],
            }
        )
        offset = min(100.0, offset + width)
    return out


def pretty_body(body: str | None) -> tuple[str, bool]:
    """The body pretty-printed when it is JSON, and whether it was."""
    if not body:
        return "", False
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False), True
    except (json.JSONDecodeError, TypeError, RecursionError):  # nested too deeply: shown as it came
        return body, False


@dataclass(frozen=True, slots=True)
class RunLine:
    """One line of a runs table (:mod:`services.api.ui.run_lines`): only what the line shows, so a page of
    fifty runs no longer pretty-prints fifty response bodies and sorts their headers to show none."""

    run_id: Any
    region: str
    status: str
    status_code: Any
    error: dict[str, str] | None
    total_ms: Any
    assertions: list[Any]
    failed_count: int
    completed_at: datetime

    @property
    def region_name(self) -> str:
        """The region's display name."""
        return display_name(self.region)


def run_line(run: Run) -> RunLine:
    """A run as a line of a runs table shows it (the same figures :func:`run_detail` gives)."""
    assertions = run.assertions or []
    return RunLine(
        run_id=run.run_id,
        region=run.region,
        status=run.status,
        status_code=(run.response or {}).get("status_code"),
        error={"class": run.error_class, "message": run.error_message or ""} if run.error_class else None,
        total_ms=(run.timings or {}).get("total_ms"),
        assertions=assertions,
        failed_count=sum(1 for item in assertions if not item.get("passed")),
        completed_at=run.completed_at,
    )


def run_detail(run: Run) -> dict[str, Any]:
    """A run as its detail page shows it: failed assertions first, phases, response and request."""
    view = run_view(run)
    assertions = sorted(view["assertions"], key=lambda item: bool(item.get("passed")))
    response = view["response"] or {}
    body, is_json = pretty_body(response.get("body"))
    request = view["request"] or {}
    request_body = request.get("body")
    if request_body is not None and not isinstance(request_body, str):
        request_body = json.dumps(request_body, indent=2, ensure_ascii=False)
    return {
        **view,
        "assertions": assertions,
        "failed_count": sum(1 for item in assertions if not item.get("passed")),
        "waterfall": waterfall(view["timings"]),
        "total_ms": view["timings"].get("total_ms"),
        "status_code": response.get("status_code"),
        "response_headers": sorted((response.get("headers") or {}).items()),
        "body": body,
        "body_is_json": is_json,
        "body_truncated": bool(response.get("truncated")),
        "body_size": response.get("size"),
        "request_method": request.get("method"),
        "request_url": request.get("url"),
        "request_headers": sorted((request.get("headers") or {}).items()),
        "request_body": request_body,
        "step_bars": step_waterfall(view.get("steps")),
    }


def observed_text(value: Any) -> str:
    """An observed or target value as the user reads it (JSON for structured values)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def when(value: datetime | str | None) -> str:
    """A timestamp as ``2024-05-01 12:00:03 UTC``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def channel_views(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A check's alert channels (from its redacted spec) as the check page lists them."""
    out = []
    for index, channel in enumerate(alerts):
        kind = channel.get("channel", "")
        info = CHANNELS.get(kind)
        if info is None:
            destination = str(channel.get("url") or "")
        else:
            destination = info.shown_as.format(info.destination_text(channel)).strip()
        out.append(
            {
                "index": index,
                "kind": kind,
                "label": info.label if info else kind,
                "name": channel.get("name"),
                "destination": destination,
                "on": list(channel.get("on") or []),
            }
        )
    return out


def delivery_text(result: dict[str, Any]) -> str:
    """How a test notification went: ``Delivered (HTTP 200 in 35 ms)`` or ``Not delivered: timeout``."""
    protocol = "SMTP" if result.get("channel") == "email" else "HTTP"
    took = f"{float(result['duration_ms']):.0f} ms" if result.get("duration_ms") is not None else ""
    if result.get("ok"):
        status = f"{protocol} {result['status']}" if result.get("status") is not None else ""
        return f"Delivered ({' in '.join(part for part in (status, took) if part)})"
    error = result.get("error") or "unknown error"
    return f"Not delivered: {error}" + (f" (after {took})" if took else "")


def notification_summary(notifications: list[dict[str, Any]]) -> str:
    """``3 notifications · 1 failed``: the one-line head of an incident's notifications."""
    counts: dict[str, int] = {}
    for item in notifications:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    head = f"{len(notifications)} notification{'' if len(notifications) == 1 else 's'}"
    return " · ".join([head, *(f"{counts[s]} {s}" for s in ("sent", "pending", "failed") if counts.get(s))])
