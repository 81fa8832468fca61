"""The assertion engine: every comparison on every source it is offered for, recording what it observed.

Semantics, chosen to match what a user types into the UI:

- **Typed comparison.** A number compares numerically with a numeric string (``201`` vs ``"201"``,
  ``1.0`` vs ``"1"``, header ``"42"`` greater than ``10``); a boolean equals ``"true"``/``"false"``; JSON
  ``null`` equals ``"null"``; a JSON array or object equals a string target holding the same JSON. Two
  strings compare as strings. ``text_body`` equality ignores leading and trailing whitespace.
- **contains** on a JSON array is membership (typed, as above), on an object is "has this key", on a
  string (or header, or text body) is a case-sensitive substring.
- **matches** is an RE2 search (anchor with ``^``/``$`` for a full match) on the value's text; non-string
  JSON values are matched against their compact JSON text.
- **is_empty** holds for ``""``, ``[]``, ``{}`` and JSON ``null``; **is_null** only for JSON ``null``.
- **A missing header** (absent) reads as ``""`` for every comparison but ``exists``/``not_exists``, so
  ``is_empty`` holds and ``not_contains`` passes. **A JSONPath that matches nothing** is *not found*:
  only ``not_exists`` passes; every other comparison fails with "not found" (``is_null`` included).
- **A JSONPath matching several values** observes the list of them (one match observes the value itself),
  so ``$.items[*].id contains 7`` is membership and ``equals`` compares the whole list.
- **A truncated body** (over ``max_response_bytes``) cannot be parsed as JSON: ``json_body`` assertions
  fail with "body truncated" and the runner classifies the run ``too_large`` (see ``needs_json``);
  ``text_body`` assertions see the truncated text.

JSONPath expressions (``jsonpath_ng.ext``) and regular expressions are compiled once and cached; every
regex, ``=~`` and ``sub`` inside a JSONPath included, runs on RE2 (:mod:`contracts.v1.patterns`): linear
in the text, so a pattern cannot stall the runner's loop.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Final

from contracts.v1 import patterns
from contracts.v1.checks import REGEX, Assertion, Source
from contracts.v1.patterns import UnsupportedPattern, parse_jsonpath
from contracts.v1.runs import AssertionOutcome, CertificateInfo, Timings

#: Observed strings are cut to this many characters before they are stored.
OBSERVED_MAX_CHARS: Final = 500
#: Observed arrays/objects keep at most this many items, this deep.
OBSERVED_MAX_ITEMS: Final = 50
OBSERVED_MAX_DEPTH: Final = 6
#: Values quoted inside a human message are cut to this many characters.
MESSAGE_VALUE_CHARS: Final = 80

#: Why a JSON assertion could not look at a body nested deeper than Python can walk.
TOO_DEEP: Final = "JSON nested too deeply to evaluate"

#: Used when a check has no assertions: an HTTP error status should not count as "up".
DEFAULT_ASSERTIONS: Final = (Assertion(source="status_code", comparison="less_than", target=400),)

_NUMBER: Final = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")
_MISSING: Final = object()
_PLAIN_PATH: Final = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass
class ResponseFacts:
    """What the assertions may look at. The text and JSON are decoded on first use only."""

    status_code: int
    total_ms: float
    headers: Mapping[str, str]
    body: bytes = b""
    truncated: bool = False
    charset: str | None = None
    timings: Timings | None = None
    certificate: CertificateInfo | None = None

    @cached_property
    def text(self) -> str:
        """The body decoded with the response's charset (UTF-8 if none or unknown), leniently."""
        return _decode(self.body, self.charset)

    def text_prefix(self, chars: int) -> tuple[str, bool]:
        """The first ``chars`` characters of the text, and whether there is more — without decoding a
        big body whole unless an assertion already did."""
        if "text" in self.__dict__ or len(self.body) <= chars:
            text = self.text
            return text[:chars], len(text) > chars
        head = _decode(self.body[: chars * 4], self.charset)
        return head[:chars], True

    @cached_property
    def document(self) -> tuple[Any, str | None]:
        """``(parsed JSON, None)`` or ``(None, why it could not be parsed)``."""
        if self.truncated:
            return None, "body truncated at max_response_bytes, JSON not evaluated"
        try:
            return json.loads(self.body), None
        except UnicodeDecodeError:
            try:
                return json.loads(self.text), None
            except ValueError as exc:
                return None, f"body is not JSON ({exc})"
            except RecursionError:
                return None, TOO_DEEP
        except ValueError as exc:
            return None, f"body is not JSON ({exc})"
        except RecursionError:
            return None, TOO_DEEP


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def needs_json(assertions: Sequence[Assertion]) -> bool:
    """Whether any assertion reads the JSON body (so a truncated body makes the run ``too_large``)."""
    return any(assertion.source in ("json_body", "json_schema") for assertion in assertions)


def unrunnable(assertions: Sequence[Assertion]) -> str | None:
    """Why one of ``assertions`` cannot be evaluated (a regex RE2 refuses, in a target or a JSONPath),
    or ``None``. Config validation refuses these when a check is saved; a check stored before that
    rule still arrives, and its run ends as an error saying this instead of backtracking on the loop."""
    for number, assertion in enumerate(assertions, start=1):
        try:
            if assertion.comparison in REGEX:
                patterns.compile_pattern(_text(assertion.target))
            if assertion.source == "json_schema":
                for pattern in patterns.schema_patterns(assertion.target):
                    patterns.compile_pattern(pattern)
            if (
                assertion.source == "json_body"
                and assertion.property
                and _plain_keys(assertion.property) is None
            ):
                parse_jsonpath(assertion.property)
        except UnsupportedPattern as exc:
            return f"assertion {number} ({_label(assertion)} {assertion.comparison.replace('_', ' ')}): {exc}"
    return None


def evaluate(assertions: Sequence[Assertion], response: ResponseFacts) -> list[AssertionOutcome]:
    """Evaluate every assertion (``DEFAULT_ASSERTIONS`` when there are none), in order."""
    return [evaluate_one(assertion, response) for assertion in (assertions or DEFAULT_ASSERTIONS)]


def evaluate_one(assertion: Assertion, response: ResponseFacts) -> AssertionOutcome:
    """Evaluate one assertion against one response; never raises on odd data, it fails instead.

    JSON nested deeper than Python's recursion allows (the parser, a ``..`` JSONPath, a schema or the
    observed value's encoding may each meet it) fails the assertion saying so, not the run."""
    try:
        return _evaluate_one(assertion, response)
    except RecursionError:
        message = f"{_label(assertion)}: {TOO_DEEP}, expected {_expected(assertion)}"
        return _outcome(assertion, None, False, message)


def _evaluate_one(assertion: Assertion, response: ResponseFacts) -> AssertionOutcome:
    label = _label(assertion)
    if assertion.source == "json_schema":
        return _schema_outcome(assertion, response, label)
    try:
        observed, problem = _observe(assertion, response)
    except Exception as exc:  # a JSONPath extension choking on odd data fails the assertion, not the run
        observed, problem = None, f"could not evaluate ({type(exc).__name__}: {exc})"
    if problem is not None:
        return _outcome(assertion, None, False, f"{label}: {problem}, expected {_expected(assertion)}")
    comparison = assertion.comparison
    if observed is _MISSING:
        if comparison in ("exists", "not_exists"):
            passed = comparison == "not_exists"
            message = f"{label} not found" if passed else f"{label} not found, expected exists"
            return _outcome(assertion, None, passed, message)
        if assertion.source == "header":
            passed, why = _compare(comparison, "", assertion.target)
            shown = "absent"
        else:
            passed, why = False, None
            shown = "not found"
        expected = _expected(assertion)
        message = f"{label} {shown} {expected}" if passed else f"{label} {shown}, expected {expected}"
        return _outcome(assertion, None, passed, message + (f" ({why})" if why and not passed else ""))
    if comparison in ("exists", "not_exists"):
        passed = comparison == "exists"
        shown = _show(observed, assertion.source)
        message = f"{label} {shown} exists" if passed else f"{label} {shown}, expected not exists"
        return _outcome(assertion, observed, passed, message)
    if assertion.source == "text_body" and comparison in ("equals", "not_equals"):
        passed, why = _compare(comparison, observed.strip(), _text(assertion.target).strip())
    else:
        passed, why = _compare(comparison, observed, assertion.target)
    shown = _show(observed, assertion.source)
    expected = _expected(assertion)
    if passed:
        message = f"{label} {shown} {expected}"
    else:
        message = f"{label} {shown}, expected {expected}" + (f" ({why})" if why else "")
    return _outcome(assertion, observed, passed, message)


def _observe(assertion: Assertion, response: ResponseFacts) -> tuple[Any, str | None]:
    """The value an assertion looks at, ``_MISSING`` when absent, or a reason it cannot be read."""
    source = assertion.source
    if source == "status_code":
        return response.status_code, None
    if source == "response_time":
        return round(response.total_ms, 3), None
    if source == "header":
        value = response.headers.get((assertion.property or "").lower())
        return (_MISSING if value is None else value), None
    if source == "text_body":
        return response.text, None
    if source == "phase_time":
        return _phase(response.timings, assertion.property or ""), None
    if source == "tls_certificate":
        if response.certificate is None:
            return None, "no TLS certificate (not an https response)"
        return getattr(response.certificate, assertion.property or ""), None
    document, problem = response.document
    if problem is not None:
        return None, problem
    path = assertion.property or "$"
    keys = _plain_keys(path)
    if keys is not None:  # $.a.b: a dict walk gives the same answer as jsonpath_ng, ~10x faster
        value = document
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return _MISSING, None
            value = value[key]
        return value, None
    matches = [match.value for match in parse_jsonpath(path).find(document)]
    if not matches:
        return _MISSING, None
    return (matches[0] if len(matches) == 1 else matches), None


#: ``phase_time`` property → the :class:`Timings` field it reads.
_PHASE_FIELDS: Final = {
    "dns": "dns_ms",
    "connect": "connect_ms",
    "tls": "tls_ms",
    "first_byte": "ttfb_ms",
    "download": "download_ms",
}


def _phase(timings: Timings | None, phase: str) -> Any:
    """A phase's time in ms; a phase that did not happen (no DNS for an IP, no TLS on http) is 0."""
    value = getattr(timings, _PHASE_FIELDS[phase], None) if timings is not None else None
    return round(value, 3) if value is not None else 0.0


#: At most this many schema violations are listed in an outcome.
SCHEMA_ERRORS_SHOWN: Final = 10


def _schema_outcome(assertion: Assertion, response: ResponseFacts, label: str) -> AssertionOutcome:
    """Validate the body (or the value at ``property``) against the target schema; the observed value
    lists the failing paths, each with what is wrong there."""
    document, problem = response.document
    if problem is None and assertion.property:
        found, problem = _observe(assertion.model_copy(update={"source": "json_body"}), response)
        if found is _MISSING:
            return _outcome(assertion, None, False, f"{label} not found, expected matches schema")
        document = found
    if problem is not None:
        return _outcome(assertion, None, False, f"{label}: {problem}, expected matches schema")
    validator = _schema_validator(json.dumps(assertion.target, sort_keys=True))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    failing = [f"{error.json_path}: {error.message}" for error in errors[:SCHEMA_ERRORS_SHOWN]]
    if not failing:
        return _outcome(assertion, [], True, f"{label} matches schema")
    shown = "; ".join(failing[:3]) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
    message = f"{label} {len(errors)} violation(s): {shown}, expected matches schema"
    return _outcome(assertion, failing, False, message)


@lru_cache(maxsize=256)
def _schema_validator(schema_text: str) -> Any:
    return patterns.schema_validator(json.loads(schema_text))


def read_value(source: Source, path: str | None, response: ResponseFacts) -> tuple[bool, Any, str | None]:
    """``(found, value, problem)`` for a ``json_body`` JSONPath, a header or the status code — the same
    reading the assertions do, whole (not cut for storage). Extractions use it."""
    probe = Assertion.model_construct(source=source, property=path, comparison="exists", target=None)
    value, problem = _observe(probe, response)
    if problem is not None:
        return False, None, problem
    return value is not _MISSING, (None if value is _MISSING else value), None


def search(pattern: str, text: str) -> Any:
    """The first match (with its groups) of a user's regular expression in ``text``, on RE2 like
    ``matches``, or ``None``. Raises :class:`UnsupportedPattern` for a pattern RE2 cannot run."""
    return patterns.compile_pattern(pattern, capture=True).search(text)


def _compare(comparison: str, observed: Any, target: Any) -> tuple[bool, str | None]:
    """Whether ``observed <comparison> target`` holds, and why not when that helps the reader."""
    if comparison == "equals":
        return _equal(observed, target), None
    if comparison == "not_equals":
        return not _equal(observed, target), None
    if comparison in ("greater_than", "less_than", "greater_or_equal", "less_or_equal"):
        left, right = _number(observed), _number(target)
        if left is None:
            return False, "not a number"
        if right is None:
            return False, "target is not a number"
        if comparison == "greater_than":
            return left > right, None
        if comparison == "less_than":
            return left < right, None
        if comparison == "greater_or_equal":
            return left >= right, None
        return left <= right, None
    if comparison == "contains":
        return _contains(observed, target), None
    if comparison == "not_contains":
        return not _contains(observed, target), None
    if comparison in ("matches", "not_matches"):
        try:
            found = patterns.search(_text(target), _text(observed))
        except UnsupportedPattern as exc:
            return False, str(exc)
        return (found if comparison == "matches" else not found), None
    if comparison == "is_empty":
        return _empty(observed), None
    if comparison == "is_not_empty":
        return not _empty(observed), None
    if comparison == "is_null":
        return observed is None, None
    if comparison == "is_not_null":
        return observed is not None, None
    return False, f"unknown comparison {comparison!r}"


def _equal(left: Any, right: Any) -> bool:
    """Typed equality: see the module docstring."""
    if left is None or right is None:
        return (left is None and right is None) or _is_null_text(left) or _is_null_text(right)
    if isinstance(left, bool) or isinstance(right, bool):
        left_bool, right_bool = _boolean(left), _boolean(right)
        return left_bool is not None and left_bool == right_bool
    if isinstance(left, int | float) or isinstance(right, int | float):
        left_number, right_number = _number(left), _number(right)
        return left_number is not None and left_number == right_number
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, list | dict) and isinstance(right, str):
        return _json_text_equals(left, right)
    if isinstance(right, list | dict) and isinstance(left, str):
        return _json_text_equals(right, left)
    return bool(left == right)


def _is_null_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() == "null"


def _json_text_equals(value: list[Any] | dict[str, Any], text: str) -> bool:
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return None


def _number(value: Any) -> float | None:
    """A finite number from a number or a numeric string; ``None`` for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if not (isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value))):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _contains(observed: Any, target: Any) -> bool:
    if isinstance(observed, list):
        return any(_equal(item, target) for item in observed)
    if isinstance(observed, dict):
        return _text(target) in observed
    if observed is None:
        return False
    return _text(target) in _text(observed)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _text(value: Any) -> str:
    """A value as the text a user would type: JSON spelling for non-strings, ``1`` for ``1.0``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


@lru_cache(maxsize=4096)
def _plain_keys(path: str) -> tuple[str, ...] | None:
    """The keys of a path made only of ``.name`` steps (``$.a.b`` → ``("a", "b")``), else ``None``."""
    if not _PLAIN_PATH.fullmatch(path):
        return None
    return tuple(path.split(".")[1:])


def _label(assertion: Assertion) -> str:
    if assertion.property:
        return f"{assertion.source} {assertion.property}"
    return assertion.source


def _expected(assertion: Assertion) -> str:
    words = assertion.comparison.replace("_", " ")
    if assertion.target is None or assertion.target == "":
        return words
    if assertion.source in ("response_time", "phase_time"):
        return f"{words} {_text(assertion.target)} ms"
    return f"{words} {_quote(assertion.target)}"


def _show(observed: Any, source: str) -> str:
    if source in ("response_time", "phase_time"):
        return f"{observed:.0f} ms" if isinstance(observed, float) else f"{observed} ms"
    return _quote(observed)


def _quote(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _text(value)
    if len(text) > MESSAGE_VALUE_CHARS:
        text = text[: MESSAGE_VALUE_CHARS - 1] + "…"
    return text


def _outcome(assertion: Assertion, observed: Any, passed: bool, message: str) -> AssertionOutcome:
    return AssertionOutcome(
        source=assertion.source,
        property=assertion.property,
        comparison=assertion.comparison,
        target=assertion.target,
        observed=bounded(observed),
        passed=passed,
        message=message,
    )


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` made JSON-safe and small: long strings cut, long arrays/objects shortened."""
    if isinstance(value, str):
        return value if len(value) <= OBSERVED_MAX_CHARS else value[: OBSERVED_MAX_CHARS - 1] + "…"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= OBSERVED_MAX_DEPTH:
        return bounded(_text(value))
    if isinstance(value, list | tuple):
        items = [bounded(item, depth + 1) for item in value[:OBSERVED_MAX_ITEMS]]
        if len(value) > OBSERVED_MAX_ITEMS:
            items.append(f"… {len(value) - OBSERVED_MAX_ITEMS} more")
        return items
    if isinstance(value, dict):
        keys = list(value)[:OBSERVED_MAX_ITEMS]
        shortened = {str(key): bounded(value[key], depth + 1) for key in keys}
        if len(value) > OBSERVED_MAX_ITEMS:
            shortened["…"] = f"{len(value) - OBSERVED_MAX_ITEMS} more keys"
        return shortened
    return bounded(str(value))
