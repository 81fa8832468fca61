"""The regex dialect of checks: RE2, linear in the text, so no pattern a user writes can stall a runner.

Python's ``re`` backtracks: ``^(a+)+$`` against 40 characters runs for hours on the event loop. RE2
(``google-re2``) guarantees time linear in the text and refuses what it cannot do that way
(backreferences, lookaround) — at config time that is a 422 naming the field; a stored check that
predates the rule ends its run as an error that says why, before any request is sent.

The same engine serves regexes inside JSONPath: the ``=~`` filter operator and the ``sub(/re/, x)``
extension of ``jsonpath_ng.ext``. :func:`parse_jsonpath` is the one way Seymour parses a JSONPath: it
rebinds the library's ``=~`` operator to RE2 (once, process-wide) and swaps every ``sub`` node's
compiled pattern for an RE2 one, so no path reaches ``re``.

And inside JSON Schema (``json_schema`` assertions): ``pattern``, ``patternProperties`` and the
``additionalProperties``/``unevaluatedProperties`` that consult them. :func:`schema_validator` is the
one way Seymour builds a validator: ``jsonschema``'s keyword modules only ever call ``re.search``, and
their ``re`` is rebound (once) to an RE2 stand-in.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Final

import re2

#: A pattern longer than this is refused (it is a config value, not a document).
MAX_PATTERN_CHARS: Final = 1000
#: RE2's memory budget for one compiled pattern; a pattern whose automaton needs more is refused.
MAX_PATTERN_MEMORY: Final = 8 * 1024 * 1024


class UnsupportedPattern(ValueError):
    """A regex the linear-time engine cannot run (syntax it lacks, too long, or over its budget)."""


def _options(*, capture: bool) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    options.never_capture = not capture
    return options


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str, *, capture: bool = False) -> Any:
    """``pattern`` compiled by RE2 (cached). Raises :class:`UnsupportedPattern` saying why.

    Without ``capture`` the engine skips submatch tracking: a yes/no search over 16 MiB then costs
    ~0.1 s instead of ~1 s, and RE2 releases the GIL while it runs.
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsupportedPattern(f"regular expression longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _options(capture=capture))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise UnsupportedPattern(
            f"regular expression not supported by the linear-time engine (RE2): {reason}"
        ) from None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches anywhere in ``text``. Raises :class:`UnsupportedPattern`."""
    return compile_pattern(pattern).search(text) is not None


def _filter_search(value: Any, pattern: Any) -> bool:
    """``jsonpath_ng``'s ``=~`` on RE2: a non-string or an unrunnable pattern does not match."""
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    try:
        return search(pattern, value)
    except UnsupportedPattern:
        return False


@functools.cache
def _rebind_filter_operator() -> None:
    from jsonpath_ng.ext import filter as jsonpath_filter

    jsonpath_filter.OPERATOR_MAP["=~"] = _filter_search


@functools.lru_cache(maxsize=4096)
def parse_jsonpath(path: str) -> Any:
    """``path`` parsed by ``jsonpath_ng.ext`` with every regex in it on RE2 (cached: a parse costs
    ~150 µs, a find ~3 µs). Raises :class:`UnsupportedPattern` for a regex RE2 cannot run and the
    library's errors for a path it cannot parse."""
    from jsonpath_ng.ext import parse
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.ext.string import Sub

    _rebind_filter_operator()
    parsed = parse(path)
    for node in _nodes(parsed):
        if isinstance(node, Sub):
            node.regex = compile_pattern(node.expr, capture=True)
        elif isinstance(node, Expression) and node.op == "=~" and isinstance(node.value, str):
            compile_pattern(node.value)
    return parsed


def _nodes(node: Any, depth: int = 0) -> Iterator[Any]:
    """Every JSONPath node under ``node`` (the library has no visitor; its nodes keep children as
    attributes and lists)."""
    if depth > 200:
        raise UnsupportedPattern("JSONPath nested too deeply")
    yield node
    for value in vars(node).values():
        children = value if isinstance(value, list | tuple) else (value,)
        for child in children:
            if type(child).__module__.startswith("jsonpath_ng"):
                yield from _nodes(child, depth + 1)


class _Re2Module:
    """Stands in for ``re`` inside ``jsonschema``'s keyword code: ``search`` runs on RE2 (a pattern RE2
    refuses matches nothing); anything else is ``re``'s."""

    @staticmethod
    def search(pattern: str, string: str) -> Any:
        try:
            return compile_pattern(pattern).search(string)
        except UnsupportedPattern:
            return None

    def __getattr__(self, name: str) -> Any:
        import re

        return getattr(re, name)


@functools.cache
def _rebind_jsonschema() -> None:
    import importlib

    for name in ("jsonschema._keywords", "jsonschema._utils", "jsonschema._legacy_keywords"):
        module = importlib.import_module(name)
        if hasattr(module, "re"):
            setattr(module, "re", _Re2Module())  # noqa: B010  (a module attribute, not an API)


def schema_validator(schema: dict[str, Any]) -> Any:
    """A ``jsonschema`` validator for ``schema`` (its own draft) whose regexes run on RE2. Raises
    :class:`UnsupportedPattern` for a pattern RE2 cannot run."""
    import jsonschema

    _rebind_jsonschema()
    for pattern in schema_patterns(schema):
        compile_pattern(pattern)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_patterns(schema: Any, depth: int = 0) -> Iterator[str]:
    """Every regex in a JSON Schema: ``pattern`` values and ``patternProperties`` keys, at any depth."""
    if depth > 200:
        raise UnsupportedPattern("JSON Schema nested too deeply")
    if isinstance(schema, dict):
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            yield pattern
        properties = schema.get("patternProperties")
        if isinstance(properties, dict):
            yield from (key for key in properties if isinstance(key, str))
        for value in schema.values():
            yield from schema_patterns(value, depth + 1)
    elif isinstance(schema, list):
        for item in schema:
            yield from schema_patterns(item, depth + 1)
