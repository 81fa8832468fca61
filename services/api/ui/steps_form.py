"""The step editor of the check form: the request above as the first step, more steps, teardown steps.

Kept as text like the rest of the form, so invalid input comes back exactly as typed. A check whose form
has no extra step, no extraction and no first-step name stays a single-request check.

Field names: ``first_step_name``, ``first-extract_row`` (keys of the first step's extractions),
``step_row`` (keys of the step cards, in order), ``step-<k>-name|teardown|method|url|headers|body``,
``step-<k>-assertion_row`` (keys of its assertion rows, named ``assertion-<a>-…`` like the form's),
``step-<k>-extract_row`` and ``extract-<e>-name|source|property``; ``variables`` (``name=value`` lines),
``share_cookies``, ``teardown_fails_check``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from contracts.v1.checks import METHODS

EXTRACT_SOURCES: Final = {
    "json_body": "JSON body (JSONPath)",
    "header": "Header",
    "text_body": "Text body (regex group)",
    "status_code": "Status code",
}


def _key() -> str:
    return secrets.token_hex(4)


def _text(data: Any, name: str, default: str = "") -> str:
    value = data.get(name)
    return value if isinstance(value, str) else default


def _keys(data: Any, name: str) -> list[str]:
    return [key for key in data.getall(name, []) if isinstance(key, str) and key]


@dataclass
class ExtractRow:
    """One extraction: save a value of the response as ``steps.<step>.<name>``."""

    key: str
    name: str = ""
    source: str = "json_body"
    prop: str = ""

    @classmethod
    def from_post(cls, data: Any, key: str) -> ExtractRow:
        """Row ``key`` as posted."""
        source = _text(data, f"extract-{key}-source", "json_body")
        return cls(
            key,
            _text(data, f"extract-{key}-name"),
            source if source in EXTRACT_SOURCES else "json_body",
            _text(data, f"extract-{key}-property"),
        )

    @classmethod
    def from_spec(cls, item: dict[str, Any]) -> ExtractRow:
        """Row for a stored extraction."""
        return cls(_key(), item.get("name", ""), item.get("source", "json_body"), item.get("property") or "")

    def to_data(self) -> dict[str, Any]:
        """The extraction as the spec takes it."""
        prop = self.prop.strip() if self.source != "text_body" else self.prop
        return {"name": self.name.strip(), "source": self.source, "property": prop or None}


@dataclass
class StepCard:
    """One step after the first (or a teardown step), as its card in the form shows it."""

    key: str
    name: str = ""
    teardown: bool = False
    method: str = "GET"
    url: str = ""
    headers: str = ""
    body: str = ""
    assertions: list[Any] = field(default_factory=list)
    extractions: list[ExtractRow] = field(default_factory=list)

    @classmethod
    def blank(cls, teardown: bool = False) -> StepCard:
        """A new card (a teardown card defaults to DELETE)."""
        return cls(_key(), teardown=teardown, method="DELETE" if teardown else "GET")

    @classmethod
    def from_spec(cls, step: dict[str, Any], teardown: bool, assertion_row: Any) -> StepCard:
        """The card of a stored step; ``assertion_row`` turns a stored assertion into a form row."""
        request = step.get("request") or {}
        body = request.get("body")
        text = "" if body is None else body if isinstance(body, str) else json.dumps(body, indent=2)
        headers = "\n".join(f"{name}: {value}" for name, value in (request.get("headers") or {}).items())
        return cls(
            _key(),
            step.get("name", ""),
            teardown,
            request.get("method", "GET"),
            request.get("url", ""),
            headers,
            text,
            [assertion_row(item) for item in step.get("assertions") or []],
            [ExtractRow.from_spec(item) for item in step.get("extract") or []],
        )

    @classmethod
    def from_post(cls, data: Any, key: str, assertion_row: Any) -> StepCard:
        """Card ``key`` as posted; ``assertion_row(data, key)`` reads one assertion row."""
        method = _text(data, f"step-{key}-method", "GET")
        return cls(
            key,
            _text(data, f"step-{key}-name"),
            _text(data, f"step-{key}-teardown") == "on",
            method if method in METHODS else "GET",
            _text(data, f"step-{key}-url"),
            _text(data, f"step-{key}-headers"),
            _text(data, f"step-{key}-body"),
            [assertion_row(data, a) for a in _keys(data, f"step-{key}-assertion_row")],
            [ExtractRow.from_post(data, e) for e in _keys(data, f"step-{key}-extract_row")],
        )

    def to_data(self, assertion_data: Any) -> tuple[dict[str, Any], str | None]:
        """The step as the spec takes it, and what is wrong with its text fields (if anything)."""
        headers: dict[str, str] = {}
        problem: str | None = None
        for line in self.headers.splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                problem = problem or f"header line {line.strip()!r} is not 'Name: value'"
                continue
            headers[name.strip()] = value.strip()
        body: Any = None
        if self.body.strip():
            stripped = self.body.strip()
            if stripped[0] in "{[":
                try:
                    body = json.loads(stripped)
                except json.JSONDecodeError as exc:
                    problem = problem or f"body is not valid JSON: {exc.msg} (line {exc.lineno})"
                    body = self.body
            else:
                body = self.body
        step = {
            "name": self.name.strip(),
            "request": {"method": self.method, "url": self.url.strip(), "headers": headers, "body": body},
            "assertions": [assertion_data(row) for row in self.assertions],
            "extract": [row.to_data() for row in self.extractions],
        }
        return step, problem


def _pairs(text: str, field_name: str, errors: dict[str, str]) -> dict[str, str]:
    """``name=value`` lines as a dict (an error under ``field_name`` for a line that is not one)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            errors[field_name] = f"line {line.split('=')[0].strip()!r}… is not 'name=value'"
            continue
        values[name.strip()] = value.strip()
    return values


@dataclass
class ScenarioFields:
    """The multi-step part of the form."""

    first_name: str = ""
    first_extractions: list[ExtractRow] = field(default_factory=list)
    steps: list[StepCard] = field(default_factory=list)
    variables: str = ""
    secrets: str = ""
    share_cookies: bool = False
    teardown_fails_check: bool = False

    @property
    def is_scenario(self) -> bool:
        """Whether the form describes a multi-step check."""
        return bool(self.steps or self.first_extractions or self.first_name.strip())

    @classmethod
    def from_spec(cls, spec: dict[str, Any], assertion_row: Any) -> ScenarioFields:
        """The fields of a stored (redacted) spec."""
        steps = spec.get("steps") or []
        first = steps[0] if steps else {}
        return cls(
            first.get("name", ""),
            [ExtractRow.from_spec(item) for item in first.get("extract") or []],
            [StepCard.from_spec(step, False, assertion_row) for step in steps[1:]]
            + [StepCard.from_spec(step, True, assertion_row) for step in spec.get("teardown") or []],
            "\n".join(f"{name}={value}" for name, value in (spec.get("variables") or {}).items()),
            "\n".join(f"{name}={value}" for name, value in (spec.get("secrets") or {}).items()),
            bool(spec.get("share_cookies")),
            bool(spec.get("teardown_fails_check")),
        )

    @classmethod
    def from_post(cls, data: Any, assertion_row: Any) -> ScenarioFields:
        """The fields as posted."""
        return cls(
            _text(data, "first_step_name"),
            [ExtractRow.from_post(data, e) for e in _keys(data, "first-extract_row")],
            [StepCard.from_post(data, k, assertion_row) for k in _keys(data, "step_row")],
            _text(data, "variables"),
            _text(data, "secrets"),
            _text(data, "share_cookies") == "on",
            _text(data, "teardown_fails_check") == "on",
        )

    def apply(self, base: dict[str, Any], assertion_data: Any) -> dict[str, str]:
        """Write steps, teardown and variables into the spec JSON ``base`` (whose ``request`` and
        ``assertions`` are the first step's); returns errors keyed ``step:<key>`` or ``variables``."""
        errors: dict[str, str] = {}
        variables = _pairs(self.variables, "variables", errors)
        secrets = _pairs(self.secrets, "secrets", errors)
        base.update(
            {
                "variables": variables,
                "secrets": secrets,
                "share_cookies": self.share_cookies,
                "teardown_fails_check": self.teardown_fails_check,
            }
        )
        if not self.is_scenario:
            base.update({"steps": [], "teardown": []})
            return errors
        first = {
            "name": self.first_name.strip() or "request",
            "request": base["request"],
            "assertions": base["assertions"],
            "extract": [row.to_data() for row in self.first_extractions],
        }
        steps: list[dict[str, Any]] = [first]
        teardown: list[dict[str, Any]] = []
        for card in self.steps:
            step, problem = card.to_data(assertion_data)
            if problem:
                errors[f"step:{card.key}"] = problem
            (teardown if card.teardown else steps).append(step)
        base.update({"steps": steps, "teardown": teardown})
        return errors

    def form_key(self, parts: list[str]) -> str:
        """The form field an error at spec path ``parts`` (``steps.2.request.url``) belongs to."""
        head = parts[0]
        if head in ("variables", "secrets"):
            return head
        if head not in ("steps", "teardown") or len(parts) < 2 or not parts[1].isdigit():
            return "general"
        index = int(parts[1])
        cards = [card for card in self.steps if card.teardown == (head == "teardown")]
        if head == "steps":
            if index == 0:
                return "first_step"
            index -= 1
        return f"step:{cards[index].key}" if index < len(cards) else "general"
