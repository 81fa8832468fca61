"""Renders a step's request: each parsed placeholder replaced by a value from fixed tables, nothing else.

The parser (``contracts.v1.templates``) turns text into plain placeholder records; this module looks
each one up in three dictionaries (extracted step values, variables, secrets) or computes a built-in
(``uuid``, ``now``, ``random_int``). There is no expression evaluation, no attribute access, and the
substituted text is never parsed again — a variable holding ``{{ secrets.key }}`` stays that text.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from contracts.v1.checks import RequestSpec
from contracts.v1.templates import Placeholder, TemplateError, has_placeholders, parse


class MissingValue(LookupError):
    """A placeholder whose value does not exist at run time (e.g. an extraction that never ran)."""


@dataclass
class Context:
    """What placeholders may read. ``used_secrets`` collects the secret values rendered, to mask them."""

    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.SystemRandom)
    used_secrets: set[str] = field(default_factory=set)


def value_of(placeholder: Placeholder, context: Context) -> Any:
    """The value one placeholder stands for. Raises :class:`MissingValue` naming it when absent."""
    kind = placeholder.kind
    if kind == "steps":
        values = context.steps.get(placeholder.scope)
        if values is None or placeholder.name not in values:
            raise MissingValue(
                f"{{{{ {placeholder.reference} }}}} has no value (step not run or nothing extracted)"
            )
        return values[placeholder.name]
    if kind == "vars":
        if placeholder.name not in context.variables:
            raise MissingValue(f"{{{{ {placeholder.reference} }}}}: no variable '{placeholder.name}'")
        return context.variables[placeholder.name]
    if kind == "secrets":
        if placeholder.name not in context.secrets:
            raise MissingValue(f"{{{{ {placeholder.reference} }}}}: no secret '{placeholder.name}'")
        secret = context.secrets[placeholder.name]
        if secret:
            context.used_secrets.add(secret)
        return secret
    if kind == "uuid":
        return str(uuid.UUID(int=context.rng.getrandbits(128), version=4))
    if kind == "random_int":
        return context.rng.randint(placeholder.low, placeholder.high)
    now = context.clock()
    if placeholder.fmt is None:
        return now.isoformat(timespec="seconds").replace("+00:00", "Z")
    if placeholder.fmt == "unix":
        return int(now.timestamp())
    if placeholder.fmt == "unix_ms":
        return int(now.timestamp() * 1000)
    return now.strftime(placeholder.fmt)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render_text(text: str, context: Context) -> str:
    """``text`` with every placeholder replaced by its value's text."""
    if not has_placeholders(text):
        return text
    parts: list[str] = []
    position = 0
    for placeholder in parse(text):
        parts.append(text[position : placeholder.start])
        parts.append(_as_text(value_of(placeholder, context)))
        position = placeholder.end
    parts.append(text[position:])
    return "".join(parts)


def render_json(value: Any, context: Context) -> Any:
    """A JSON body with its strings rendered. A string that is exactly one placeholder takes the
    value's own JSON type (``"{{ random_int(1, 9) }}"`` → ``7``, an extracted object stays an object)."""
    if isinstance(value, str):
        if has_placeholders(value):
            found = parse(value)
            if len(found) == 1 and found[0].start == 0 and found[0].end == len(value):
                single = value_of(found[0], context)
                return single if found[0].kind in ("steps", "random_int") else _as_text(single)
        return render_text(value, context)
    if isinstance(value, dict):
        return {render_text(key, context): render_json(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, context) for item in value]
    return value


def render_request(request: RequestSpec, context: Context) -> RequestSpec:
    """``request`` with URL, header values and body rendered. Raises :class:`MissingValue` or
    :class:`TemplateError` with a message for the user when it cannot be rendered into a valid request."""
    url = render_text(request.url, context).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TemplateError(f"the rendered url {url[:200]!r} is not an http(s) URL with a host")
    headers = {name: render_text(value, context) for name, value in request.headers.items()}
    for name, value in headers.items():
        if "\n" in value or "\r" in value:
            raise TemplateError(f"header '{name}' would contain a line break once rendered")
    body = (
        render_text(request.body, context)
        if isinstance(request.body, str)
        else render_json(request.body, context)
    )
    return request.model_copy(update={"url": url, "headers": headers, "body": body})
