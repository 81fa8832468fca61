"""Secrets are write-only: redacted when a check is read, kept when a redacted value is written back —
but only to the destination they were given for.

A value shown as ``MASK`` means "unchanged": on update it is replaced by the stored secret at the same
place, so a client can GET, edit and PUT a check without knowing its secrets. A masked request secret
is restored only while that request still goes to the same scheme, host and port; a masked channel
secret only while the channel keeps its kind and URL. Otherwise the secret would follow an edit to a new
host, so the update is refused (422) and the value must be typed again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from services.api.errors import ApiError
from services.common.channels import CHANNELS, ChannelInfo
from services.common.redaction import MASK, SENSITIVE, redact_headers, redact_json, redact_url

#: Default ports, so ``https://h`` and ``https://h:443`` are the same destination.
PORTS: Final = {"http": 80, "https": 443}


def mask_url(url: str) -> str:
    """Keep scheme and host (so people recognise the destination), hide the rest (a chat webhook's URL
    is its secret)."""
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
    "secrets": {},
    "global_variables": {},
    "global_secrets": {},
}


def _requests(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every request of a spec with its field path (request, steps.N.request, teardown.N.request) and
    the key it is matched by across edits (steps may be reordered: by group and name)."""
    if isinstance(spec.get("request"), dict):
        yield "request", "request", spec["request"]
    for group in ("steps", "teardown"):
        for index, step in enumerate(spec.get(group) or []):
            if isinstance(step, dict) and isinstance(step.get("request"), dict):
                yield f"{group}.{index}.request", f"{group}:{step.get('name')}", step["request"]


def _redact_request(request: dict[str, Any]) -> None:
    marked = request.get("secret_headers") or []
    if request.get("secret_headers") == []:
        del request["secret_headers"]
    if isinstance(request.get("headers"), dict):
        request["headers"] = redact_headers(request["headers"], marked)
    if isinstance(request.get("url"), str):
        request["url"] = redact_url(request["url"])
    if isinstance(request.get("body"), dict | list):
        request["body"] = redact_json(request["body"])


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a check spec with its secrets masked: secret headers (by name or marked), URL userinfo
    and secret query values, secret JSON body fields, secret-named variables, channel URLs and secrets."""
    out = copy.deepcopy(spec)
    for key, default in SCENARIO_DEFAULTS.items():
        if key in out and out[key] == default:
            del out[key]
    for group in ("secrets", "global_secrets"):
        if isinstance(out.get(group), dict):
            out[group] = {name: MASK for name in out[group]}
    for _, _, request in _requests(out):
        _redact_request(request)
    variables = out.get("variables")
    if isinstance(variables, dict):
        out["variables"] = {
            name: MASK if SENSITIVE.search(name) else value for name, value in variables.items()
        }
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


def destination(url: Any) -> tuple[str, str, int | None] | str | None:
    """Where a request goes: scheme, host and port (a templated or odd URL: its text up to the path)."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if parts.hostname and "{" not in parts.netloc:
            return scheme, parts.hostname.lower(), parts.port or PORTS.get(scheme)
    except ValueError:
        pass
    return "/".join(text.split("/", 3)[:3])


def _masked(value: Any) -> bool:
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(_masked(item) for item in value.values())
    if isinstance(value, list):
        return any(_masked(item) for item in value)
    return False


def _restore_json(new: Any, old: Any) -> Any:
    if new == MASK:
        return old
    if isinstance(new, dict):
        keyed: dict[str, Any] = old if isinstance(old, dict) else {}
        return {key: _restore_json(value, keyed.get(key, MASK)) for key, value in new.items()}
    if isinstance(new, list):
        listed: list[Any] = old if isinstance(old, list) else []
        return [_restore_json(value, listed[i] if i < len(listed) else MASK) for i, value in enumerate(new)]
    return new


def _restore_url(new: str, old: str) -> str:
    """``new`` with its masked userinfo and query values taken from ``old`` (same destination)."""
    if MASK not in new:
        return new
    parts, before = urlsplit(new), urlsplit(old)
    netloc = parts.netloc
    if "@" in netloc and MASK in netloc.rsplit("@", 1)[0] and "@" in before.netloc:
        netloc = f"{before.netloc.rsplit('@', 1)[0]}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if MASK in query:
        olds = dict(parse_qsl(before.query, keep_blank_values=True))
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, olds.get(key, value) if value == MASK else value) for key, value in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _restore_request(
    path: str, new: dict[str, Any], old: dict[str, Any] | None, errors: list[dict[str, str]]
) -> None:
    masked = [name for name in ("url", "headers", "body") if _masked(new.get(name))]
    if not masked:
        return
    if old is None or destination(new.get("url")) != destination(old.get("url")):
        reason = (
            "there is no stored value to keep"
            if old is None
            else "the request now goes to another scheme, host or port: enter the secret again"
        )
        for name in masked:
            value = new.get(name)
            if name == "headers" and isinstance(value, dict):
                errors += [
                    {"field": f"{path}.headers.{header}", "message": reason}
                    for header, item in value.items()
                    if isinstance(item, str) and MASK in item
                ]
            else:
                errors.append({"field": f"{path}.{name}", "message": reason})
        return
    if isinstance(new.get("url"), str) and isinstance(old.get("url"), str):
        new["url"] = _restore_url(new["url"], old["url"])
    if isinstance(new.get("headers"), dict):
        lowered = {name.lower(): value for name, value in (old.get("headers") or {}).items()}
        new["headers"] = {
            name: (lowered.get(name.lower(), value) if value == MASK else value)
            for name, value in new["headers"].items()
        }
    if "body" in masked:
        new["body"] = _restore_json(new["body"], old.get("body"))


def _stored_request(stored: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((request for _, known, request in _requests(stored) if known == key), None)


def restore_secrets(incoming: Any, stored: dict[str, Any] | None) -> Any:
    """Replace masked values in ``incoming`` (raw request JSON) with the stored secrets they stand for;
    422 naming each masked field whose destination changed (or that has nothing stored to keep)."""
    if not isinstance(incoming, dict):
        return incoming
    out = copy.deepcopy(incoming)
    base = stored or {}
    errors: list[dict[str, str]] = []
    for path, key, request in _requests(out):
        _restore_request(path, request, _stored_request(base, key), errors)
    _restore_variables(out, base, errors)
    _restore_channels(out, base, errors)
    if errors:
        names = ", ".join(error["field"] for error in errors)
        raise ApiError(422, f"masked secrets cannot be kept: {names}", errors)
    return out


def _restore_variables(out: dict[str, Any], stored: dict[str, Any], errors: list[dict[str, str]]) -> None:
    variables = out.get("variables")
    if not isinstance(variables, dict) or MASK not in variables.values():
        return
    old = stored.get("variables") or {}
    same = {destination(request.get("url")) for _, _, request in _requests(out)} <= {
        destination(request.get("url")) for _, _, request in _requests(stored)
    }
    for name, value in variables.items():
        if value != MASK:
            continue
        if name in old and same:
            variables[name] = old[name]
        else:
            errors.append(
                {
                    "field": f"variables.{name}",
                    "message": "the check's requests changed destination: enter it again",
                }
            )


def _channel_destination(channel: dict[str, Any], info: ChannelInfo) -> tuple[Any, ...]:
    """Where a channel delivers: its kind, URL and destination field (those that are not secrets)."""
    fields = sorted({"url", info.destination} - set(info.secrets))
    return (channel.get("channel"), *(channel.get(field) for field in fields))


def _restore_channels(out: dict[str, Any], stored: dict[str, Any], errors: list[dict[str, str]]) -> None:
    old_channels = stored.get("alerts") or []
    for index, channel in enumerate(out.get("alerts") or []):
        if not isinstance(channel, dict):
            continue
        info = CHANNELS.get(str(channel.get("channel")))
        if info is None:
            continue
        masked_url = isinstance(channel.get("url"), str) and MASK in channel["url"]
        masked = [key for key in info.secrets if channel.get(key) == MASK]
        if not masked_url and not masked:
            continue
        match = _same_channel(channel, old_channels, index)
        if match is None:
            errors += [
                {
                    "field": f"alerts.{index}.{key}",
                    "message": "no stored channel of this kind here: enter it again",
                }
                for key in (["url"] if masked_url else []) + masked
            ]
            continue
        if masked_url:
            channel["url"] = match.get("url")
        if _channel_destination(channel, info) != _channel_destination(match, info):
            errors += [
                {
                    "field": f"alerts.{index}.{key}",
                    "message": "the channel's destination changed: enter it again",
                }
                for key in masked
            ]
            continue
        for key in masked:
            channel[key] = match.get(key)


def _same_channel(channel: dict[str, Any], old: list[dict[str, Any]], index: int) -> dict[str, Any] | None:
    """The stored channel a masked one refers to: the one of that kind with the same (or same masked)
    URL, else the one at the same position if it is of that kind (channels may be reordered)."""
    kind, url = channel.get("channel"), channel.get("url")
    masked_url = isinstance(url, str) and MASK in url
    for candidate in old:
        stored_url = candidate.get("url")
        shown = mask_url(stored_url) if masked_url and isinstance(stored_url, str) else stored_url
        if candidate.get("channel") == kind and shown == url:
            return candidate
    if not masked_url and index < len(old) and old[index].get("channel") == kind:
        return old[index]
    return None
