"""Secrets are write-only: redacted when a check is read, kept when a redacted value is written back.

A value shown as ``MASK`` (or a URL whose path is masked) means "unchanged": on update it is replaced
by the stored secret at the same place, so a client can GET, edit and PUT a check without knowing its
secrets.
"""

from __future__ import annotations

import copy
from typing import Any, Final
from urllib.parse import urlsplit

from services.common.redaction import MASK, SENSITIVE

SECRET_CHANNEL_FIELDS: Final = ("secret", "routing_key", "password")
URL_CHANNELS: Final = ("slack", "discord", "teams", "webhook", "pagerduty")


def mask_url(url: str) -> str:
    """Keep scheme and host (so people recognise the destination), hide the rest."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{MASK}"


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a check spec with sensitive header values and channel secrets masked."""
    out = copy.deepcopy(spec)
    headers = out.get("request", {}).get("headers") or {}
    for name in headers:
        if SENSITIVE.search(name):
            headers[name] = MASK
    for channel in out.get("alerts") or []:
        if channel.get("channel") in URL_CHANNELS and channel.get("url"):
            channel["url"] = mask_url(channel["url"])
        for key in SECRET_CHANNEL_FIELDS:
            if channel.get(key):
                channel[key] = MASK
    return out


def restore_secrets(incoming: Any, stored: dict[str, Any] | None) -> Any:
    """Replace masked values in ``incoming`` (raw request JSON) with the stored secrets they stand for."""
    if not isinstance(incoming, dict) or stored is None:
        return incoming
    out = copy.deepcopy(incoming)
    new_headers = (out.get("request") or {}).get("headers")
    old_headers = (stored.get("request") or {}).get("headers") or {}
    if isinstance(new_headers, dict):
        lowered = {name.lower(): value for name, value in old_headers.items()}
        for name, value in new_headers.items():
            if value == MASK and name.lower() in lowered:
                new_headers[name] = lowered[name.lower()]
    old_channels = stored.get("alerts") or []
    for index, channel in enumerate(out.get("alerts") or []):
        if not isinstance(channel, dict):
            continue
        match = _same_channel(channel, old_channels, index)
        if match is None:
            continue
        if isinstance(channel.get("url"), str) and MASK in channel["url"]:
            channel["url"] = match.get("url")
        for key in SECRET_CHANNEL_FIELDS:
            if channel.get(key) == MASK:
                channel[key] = match.get(key)
    return out


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
