"""The placeholder language of check requests: ``{{ steps.create.id }}``, ``{{ vars.x }}``, ``{{ uuid }}``.

Deliberately tiny and closed: a placeholder is one of a fixed set of forms, parsed by regular
expressions into plain data. Nothing is evaluated, no attribute or item of any Python object is ever
looked up, and a substituted value is never parsed again — so a template cannot read files, the
environment, or anything the runner did not put in its variable tables.

Forms (spaces inside the braces are optional):

- ``{{ steps.<step>.<name> }}`` — a value extracted by an earlier step;
- ``{{ vars.<name> }}`` and ``{{ secrets.<name> }}`` — a variable or secret of the check (or global);
- ``{{ uuid }}`` — a fresh random UUID;
- ``{{ now }}`` (ISO 8601, UTC) or ``{{ now("%Y-%m-%d") }}`` (a ``strftime`` format) or
  ``{{ now("unix") }}`` (seconds) or ``{{ now("unix_ms") }}``;
- ``{{ random_int(a, b) }}`` — an integer with ``a <= n <= b``.

This module only parses; the runner renders (``services/runner/templating.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

NAME: Final = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"
NAME_RE: Final = re.compile(NAME)
_PLACEHOLDER: Final = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REFERENCE: Final = re.compile(rf"\s*(steps)\.({NAME})\.({NAME})\s*|\s*(vars|secrets)\.({NAME})\s*")
_NOW: Final = re.compile(r"\s*now\s*(?:\(\s*\"([^\"\\{}]{1,64})\"\s*\))?\s*")
_RANDOM: Final = re.compile(r"\s*random_int\s*\(\s*(-?\d{1,18})\s*,\s*(-?\d{1,18})\s*\)\s*")
_UUID: Final = re.compile(r"\s*uuid\s*")

Kind = Literal["steps", "vars", "secrets", "uuid", "now", "random_int"]


class TemplateError(ValueError):
    """A template that does not parse; the message quotes the offending placeholder."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One parsed ``{{ … }}``: what it refers to, and where it sits in the text."""

    kind: Kind
    start: int
    end: int
    scope: str = ""
    name: str = ""
    fmt: str | None = None
    low: int = 0
    high: int = 0

    @property
    def reference(self) -> str:
        """How the placeholder is spelled in messages, e.g. ``steps.create.id``."""
        if self.kind == "steps":
            return f"steps.{self.scope}.{self.name}"
        if self.kind in ("vars", "secrets"):
            return f"{self.kind}.{self.name}"
        return self.kind


def parse(text: str) -> list[Placeholder]:
    """Every placeholder of ``text``, in order. Raises :class:`TemplateError` for anything else in
    double braces, and for a ``{{`` that is never closed."""
    found: list[Placeholder] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        if "{{" in text[position : match.start()]:
            raise TemplateError(f"unclosed '{{{{' at character {text.index('{{', position)}")
        found.append(_one(match.group(1), match.start(), match.end()))
        position = match.end()
    if "{{" in text[position:]:
        raise TemplateError(f"unclosed '{{{{' at character {text.index('{{', position)}")
    return found


def _one(inner: str, start: int, end: int) -> Placeholder:
    if match := _REFERENCE.fullmatch(inner):
        if match.group(1):
            return Placeholder("steps", start, end, scope=match.group(2), name=match.group(3))
        kind: Kind = "vars" if match.group(4) == "vars" else "secrets"
        return Placeholder(kind, start, end, name=match.group(5))
    if _UUID.fullmatch(inner):
        return Placeholder("uuid", start, end)
    if match := _NOW.fullmatch(inner):
        return Placeholder("now", start, end, fmt=match.group(1))
    if match := _RANDOM.fullmatch(inner):
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            raise TemplateError(f"random_int({low}, {high}): the first bound must not exceed the second")
        return Placeholder("random_int", start, end, low=low, high=high)
    shown = inner.strip()[:60]
    raise TemplateError(
        f"unknown placeholder '{{{{ {shown} }}}}' (use steps.<step>.<name>, vars.<name>, secrets.<name>,"
        ' uuid, now, now("<format>") or random_int(a, b))'
    )


def has_placeholders(text: str) -> bool:
    """Whether ``text`` contains any ``{{`` at all (cheap test before parsing)."""
    return "{{" in text
