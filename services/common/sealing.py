"""A check's secrets at rest: secret request headers and alert channel secrets, sealed inside its spec.

A stored spec (``checks.spec``, and every ``CheckChanged``/``CheckDue`` that carries it) holds no secret
in clear:

* A request header that is secret (by its name, like ``Authorization``, or listed in
  ``secret_headers``) is kept as a check secret: its literal text is sealed into ``secrets`` under a
  reserved name (``__header_<n>``) and the header keeps only the placeholder ``{{ secrets.__header_<n> }}``.
  So the router opens it exactly as it opens any check secret, only into the run that uses it
  (``services.router.fanout``), and nothing new rides on its hot path. Placeholders the user wrote
  (``Bearer {{ steps.login.token }}``) stay as they are; only the text around them is sealed.
* A channel's secret fields (those its provider's ``ChannelInfo`` names, and its URL when the URL is the
  credential) are sealed in place; alert delivery and "Send test" open them just before sending.

:func:`open_spec` is the inverse, for the api: masked-value restoring and redaction work on the spec as
the user wrote it, and :func:`seal_spec` seals it again before it is stored. Both are idempotent.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from contracts.v1.templates import parse
from services.common.channels import CHANNELS
from services.common.redaction import MASK, is_secret_name
from services.common.secretbox import Sealer, SealError, is_sealed

#: Names of check secrets made from header values: reserved (the api refuses them as user secrets).
HEADER_SECRET: Final = "__header_"
_HEADER_PLACEHOLDER: Final = re.compile(r"\{\{ secrets\.(" + re.escape(HEADER_SECRET) + r"[0-9]+) \}\}")

ChannelT = TypeVar("ChannelT", bound=BaseModel)


def is_header_secret(name: str) -> bool:
    """Whether a check secret called ``name`` holds a header's value (reserved, hidden from views)."""
    return name.startswith(HEADER_SECRET)


def _requests(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every request of a spec (the single request, or each step's and teardown step's)."""
    if isinstance(spec.get("request"), dict) and not spec.get("steps"):
        yield spec["request"]
    for group in ("steps", "teardown"):
        for step in spec.get(group) or []:
            if isinstance(step, dict) and isinstance(step.get("request"), dict):
                yield step["request"]


def _first_step_is_the_request(spec: dict[str, Any]) -> None:
    """With steps, ``request`` is a copy of the first step's (the contract insists they are equal)."""
    steps = spec.get("steps")
    if steps and isinstance(steps[0], dict) and isinstance(steps[0].get("request"), dict):
        spec["request"] = copy.deepcopy(steps[0]["request"])


def _literal_parts(value: str) -> list[tuple[str, bool]]:
    """``value`` cut into (text, is_placeholder) parts."""
    parts: list[tuple[str, bool]] = []
    position = 0
    for placeholder in parse(value):
        if placeholder.start > position:
            parts.append((value[position : placeholder.start], False))
        parts.append((value[placeholder.start : placeholder.end], True))
        position = placeholder.end
    if position < len(value):
        parts.append((value[position:], False))
    return parts


def seal_spec(spec: dict[str, Any], box: Sealer) -> dict[str, Any]:
    """A copy of ``spec`` (a check spec as JSON) with secret header values and channel secrets sealed.
    Values already sealed are left alone, so sealing twice changes nothing."""
    out = copy.deepcopy(spec)
    secrets: dict[str, Any] = dict(out.get("secrets") or {})
    used = [int(name[len(HEADER_SECRET) :]) for name in secrets if is_header_secret(name)]
    counter = iter(range(max(used, default=0) + 1, 1 << 30))
    for request in _requests(out):
        marked = request.get("secret_headers") or []
        headers = request.get("headers")
        if not isinstance(headers, dict):
            continue
        for header, value in headers.items():
            if not isinstance(value, str) or not value.strip() or not is_secret_name(header, marked):
                continue
            pieces = []
            for text, is_placeholder in _literal_parts(value):
                if is_placeholder or not text.strip():
                    pieces.append(text)
                    continue
                name = f"{HEADER_SECRET}{next(counter)}"
                secrets[name] = box.seal(text)
                pieces.append(f"{{{{ secrets.{name} }}}}")
            headers[header] = "".join(pieces)
    if secrets:
        out["secrets"] = secrets
    _first_step_is_the_request(out)
    for channel in out.get("alerts") or []:
        if isinstance(channel, dict):
            for field in _sealed_fields(channel.get("channel")):
                value = channel.get(field)
                if isinstance(value, str) and value and not is_sealed(value):
                    channel[field] = box.seal(value)
    return out


def open_spec(spec: dict[str, Any], box: Sealer | None, *, strict: bool = True) -> dict[str, Any]:
    """A copy of ``spec`` as the user wrote it: header secrets back in their headers (and out of
    ``secrets``), channel secrets opened. Check secrets the user made stay sealed (they are write-only).

    ``strict``: raise :class:`SealError` for a value this deployment's key cannot open (or when there is
    no key); otherwise show it as the mask (for views)."""

    def opened(value: str) -> str:
        try:
            if box is None:
                raise SealError("no deployment key")
            return box.open(value)
        except SealError:
            if strict:
                raise
            return MASK

    out = copy.deepcopy(spec)
    secrets = out.get("secrets")
    if isinstance(secrets, dict) and any(is_header_secret(name) for name in secrets):
        values = {name: secrets[name] for name in secrets if is_header_secret(name)}

        def restore(match: re.Match[str]) -> str:
            sealed = values.get(match.group(1))
            return opened(sealed) if isinstance(sealed, str) else match.group(0)

        for request in _requests(out):
            headers, marked = request.get("headers"), request.get("secret_headers") or []
            if isinstance(headers, dict):
                for header, value in headers.items():
                    if isinstance(value, str) and HEADER_SECRET in value and is_secret_name(header, marked):
                        headers[header] = _HEADER_PLACEHOLDER.sub(restore, value)
        out["secrets"] = {name: value for name, value in secrets.items() if not is_header_secret(name)}
        _first_step_is_the_request(out)
    for channel in out.get("alerts") or []:
        if isinstance(channel, dict):
            for field in _sealed_fields(channel.get("channel")):
                if is_sealed(channel.get(field)):
                    channel[field] = opened(channel[field])
    return out


def open_channel(channel: ChannelT, box: Sealer) -> ChannelT:
    """``channel`` (a ``contracts.v1.checks`` channel) with its sealed fields opened, for sending.
    Raises :class:`SealError` when the deployment key cannot open one."""
    fields = _sealed_fields(getattr(channel, "channel", None))
    update = {
        field: box.open(value)
        for field in fields
        if is_sealed(value := getattr(channel, field, None)) and isinstance(value, str)
    }
    return channel.model_copy(update=update) if update else channel


def _sealed_fields(kind: Any) -> tuple[str, ...]:
    info = CHANNELS.get(kind) if isinstance(kind, str) else None
    return info.sealed_fields if info is not None else ()
