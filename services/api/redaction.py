"""Secrets are write-only: redacted when a check is read, kept when a redacted value is written back.

A value shown as ``MASK`` (or a URL whose path is masked) means "unchanged": on update it is replaced
by the stored secret at the same place, so a client can GET, edit and PUT a check without knowing its
secrets.
"""

from __future__ import annotations

import copy
from typing import Any, Final
from urllib.parse import urlsplit

from services.common.channels import CHANNELS
from services.common.redaction import MASK, SENSITIVE


def mask_url(url: str) -> str:
    """Keep scheme and host (so people recognise the destination), hide the rest."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{MASK}"


#: Fields of a check that were added with multi-step checks; left out of its view while at their default,
#: so a single-request check reads (and exports) exactly as it did before they existed.
SCENARIO_DEFAULTS: Final[dict[str, Any]] = {
    "steps": [],
    "teardown": [],
    "teardown_fails_check": False,
    "share_cookies": False,
    "variables": {},
}


def _requests(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The check's request and every step's (the same objects, for masking in place)."""
    found = [spec["request"]] if isinstance(spec.get("request"), dict) else []
    for group in ("steps", "teardown"):
        for step in spec.get(group) or []:
            if isinstance(step, dict) and isinstance(step.get("request"), dict):
                found.append(step["request"])
    return found


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a check spec with sensitive header values (of every step) and channel secrets masked,
    and the multi-step fields left out while at their defaults."""
    out = copy.deepcopy(spec)
    for key, default in SCENARIO_DEFAULTS.items():
        if key in out and out[key] == default:
            del out[key]
    for request in _requests(out):
        headers = request.get("headers") or {}
        for name in headers:
            if SENSITIVE.search(name):
                headers[name] = MASK
    for channel in out.get("alerts") or []:
        info = CHANNELS.get(channel.get("channel"))
        if info is None:
            continue
        if info.secret_url and channel.get("url"):
            channel["url"] = mask_url(channel["url"])
        for key in info.secrets:
            if channel.get(key):
                channel[key] = MASK
    return out


def restore_secrets(incoming: Any, stored: dict[str, Any] | None) -> Any:
    """Replace masked values in ``incoming`` (raw request JSON) with the stored secrets they stand for."""
    if not isinstance(incoming, dict) or stored is None:
        return incoming
    out = copy.deepcopy(incoming)
    _restore_headers((out.get("request") or {}).get("headers"), (stored.get("request") or {}).get("headers"))
    for group in ("steps", "teardown"):
        old_steps = {step.get("name"): step for step in stored.get(group) or [] if isinstance(step, dict)}
        for step in out.get(group) or []:
            if (
                isinstance(step, dict)
                and step.get("name") in old_steps
                and isinstance(step.get("request"), dict)
            ):
                old_request = old_steps[step["name"]].get("request") or {}
                _restore_headers(step["request"].get("headers"), old_request.get("headers"))
    old_channels = stored.get("alerts") or []
    for index, channel in enumerate(out.get("alerts") or []):
        if not isinstance(channel, dict):
            continue
        match = _same_channel(channel, old_channels, index)
        info = CHANNELS.get(str(channel.get("channel")))
        if match is None or info is None:
            continue
        if isinstance(channel.get("url"), str) and MASK in channel["url"]:
            channel["url"] = match.get("url")
        for key in info.secrets:
            if channel.get(key) == MASK:
                channel[key] = match.get(key)
    return out


def _restore_headers(new_headers: Any, old_headers: Any) -> None:
    if not isinstance(new_headers, dict) or not isinstance(old_headers, dict):
        return
    lowered = {name.lower(): value for name, value in old_headers.items()}
    for name, value in new_headers.items():
        if value == MASK and name.lower() in lowered:
            new_headers[name] = lowered[name.lower()]


def _same_channel(channel: dict[str, Any], old: list[dict[str, Any]], index: int) -> dict[str, Any] | None:
    """The stored channel a masked one refers to: same position and type, else the first of that type
    whose masked URL matches."""
    if index < len(old) and old[index].get("channel") == channel.get("channel"):
        return old[index]
    for candidate in old:
        if candidate.get("channel") != channel.get("channel"):
            continue
        if not candidate.get("url") or mask_url(candidate["url"]) == channel.get("url"):
            return candidate
    return None
