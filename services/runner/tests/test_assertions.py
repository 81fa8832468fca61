"""The assertion engine, table-driven: every comparison on every source it is offered for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.v1.checks import COMPARISONS_BY_SOURCE, Assertion
from contracts.v1.runs import CertificateInfo, Timings
from services.runner.assertions import (
    OBSERVED_MAX_CHARS,
    OBSERVED_MAX_ITEMS,
    ResponseFacts,
    bounded,
    evaluate,
    evaluate_one,
    needs_json,
)

DOCUMENT = {
    "title": "buy milk",
    "completed": False,
    "flag": True,
    "dueDate": None,
    "id": 7,
    "price": 1.0,
    "count": "201",
    "tags": ["a", "b"],
    "ids": [1, 2, 3],
    "meta": {"owner": "ann"},
    "empty_list": [],
    "empty_obj": {},
    "empty_str": "",
    "items": [{"id": 1}, {"id": 2}],
}
HEADERS = {"content-type": "application/json; charset=utf-8", "x-count": "42", "x-empty": ""}


TIMINGS = Timings(dns_ms=1.5, connect_ms=2.0, tls_ms=7.25, ttfb_ms=30.0, download_ms=0.5, total_ms=41.25)
CERTIFICATE = CertificateInfo(
    subject="CN=api.example.test",
    issuer="CN=Example Test CA,O=Example",
    san=["api.example.test", "*.api.example.test"],
    not_before="2026-01-01T00:00:00Z",
    not_after="2026-03-01T00:00:00Z",
    days_until_expiry=30,
    hostname_match=True,
)
SCHEMA = {
    "type": "object",
    "required": ["id", "title"],
    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "tags": {"type": "array"}},
}
BAD_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "tags": {"items": {"type": "integer"}}},
}


def facts(kind: str = "json") -> ResponseFacts:
    if kind == "json":
        return ResponseFacts(201, 123.4, HEADERS, json.dumps(DOCUMENT).encode())
    if kind == "text":
        return ResponseFacts(200, 80.0, {"content-type": "text/plain"}, b"  Hello, World\n", charset="utf-8")
    if kind == "empty":
        return ResponseFacts(204, 5.0, {}, b"")
    if kind == "html":
        return ResponseFacts(200, 5.0, {"content-type": "text/html"}, b"<html>oops</html>")
    if kind == "tls":
        return ResponseFacts(200, 41.25, {}, b"{}", timings=TIMINGS, certificate=CERTIFICATE)
    if kind == "truncated":
        return ResponseFacts(200, 5.0, {}, b'{"a": [1, 2', truncated=True)
    raise ValueError(kind)


_NO = object()


def case(
    source: str,
    comparison: str,
    target: Any = None,
    prop: str | None = None,
    passed: bool = True,
    observed: Any = _NO,
    kind: str = "json",
    id: str = "",
) -> Any:
    return pytest.param(source, prop, comparison, target, kind, passed, observed, id=id)


CASES = [
    # status_code = 201
    case("status_code", "equals", 201, observed=201, id="status-equals"),
    case("status_code", "equals", "201", id="status-equals-string"),
    case("status_code", "equals", 200, passed=False, id="status-equals-fail"),
    case("status_code", "not_equals", 200, id="status-not-equals"),
    case("status_code", "not_equals", "201", passed=False, id="status-not-equals-fail"),
    case("status_code", "greater_than", 200, id="status-gt"),
    case("status_code", "greater_than", 201, passed=False, id="status-gt-fail"),
    case("status_code", "less_than", 300, id="status-lt"),
    case("status_code", "less_than", "201", passed=False, id="status-lt-fail"),
    case("status_code", "greater_or_equal", 201, id="status-ge"),
    case("status_code", "greater_or_equal", 202, passed=False, id="status-ge-fail"),
    case("status_code", "less_or_equal", 201, id="status-le"),
    case("status_code", "less_or_equal", 200, passed=False, id="status-le-fail"),
    case("status_code", "matches", r"^2\d\d$", id="status-matches"),
    case("status_code", "matches", "^5", passed=False, id="status-matches-fail"),
    case("status_code", "not_matches", "^5", id="status-not-matches"),
    case("status_code", "not_matches", "^2", passed=False, id="status-not-matches-fail"),
    # response_time = 123.4 ms
    case("response_time", "less_than", 500, observed=123.4, id="time-lt"),
    case("response_time", "less_than", 100, passed=False, id="time-lt-fail"),
    case("response_time", "less_or_equal", "123.4", id="time-le-string"),
    case("response_time", "less_or_equal", 123, passed=False, id="time-le-fail"),
    case("response_time", "greater_than", 100, id="time-gt"),
    case("response_time", "greater_than", 200, passed=False, id="time-gt-fail"),
    case("response_time", "greater_or_equal", 123.4, id="time-ge"),
    case("response_time", "greater_or_equal", 124, passed=False, id="time-ge-fail"),
    # header
    case("header", "equals", "application/json; charset=utf-8", "Content-Type", id="header-equals-any-case"),
    case("header", "equals", "text/html", "content-type", passed=False, id="header-equals-fail"),
    case("header", "equals", 42, "X-Count", observed="42", id="header-equals-number"),
    case("header", "not_equals", 43, "x-count", id="header-not-equals"),
    case("header", "not_equals", "42", "x-count", passed=False, id="header-not-equals-fail"),
    case("header", "greater_than", 10, "x-count", id="header-gt-typed"),
    case("header", "greater_than", 100, "x-count", passed=False, id="header-gt-fail"),
    case("header", "greater_than", 1, "content-type", passed=False, id="header-gt-not-a-number"),
    case("header", "less_than", 100, "x-count", id="header-lt"),
    case("header", "less_than", 42, "x-count", passed=False, id="header-lt-fail"),
    case("header", "greater_or_equal", "42", "x-count", id="header-ge"),
    case("header", "greater_or_equal", 43, "x-count", passed=False, id="header-ge-fail"),
    case("header", "less_or_equal", 42, "x-count", id="header-le"),
    case("header", "less_or_equal", 41, "x-count", passed=False, id="header-le-fail"),
    case("header", "contains", "json", "content-type", id="header-contains"),
    case("header", "contains", "xml", "content-type", passed=False, id="header-contains-fail"),
    case("header", "not_contains", "xml", "content-type", id="header-not-contains"),
    case("header", "not_contains", "json", "content-type", passed=False, id="header-not-contains-fail"),
    case("header", "not_contains", "x", "x-absent", observed=None, id="header-absent-not-contains"),
    case("header", "equals", "x", "x-absent", passed=False, observed=None, id="header-absent-equals"),
    case("header", "matches", "^application/", "content-type", id="header-matches"),
    case("header", "matches", "^text/", "content-type", passed=False, id="header-matches-fail"),
    case("header", "not_matches", "^text/", "content-type", id="header-not-matches"),
    case("header", "not_matches", "json", "content-type", passed=False, id="header-not-matches-fail"),
    case("header", "is_empty", None, "x-empty", observed="", id="header-is-empty"),
    case("header", "is_empty", None, "x-absent", observed=None, id="header-absent-is-empty"),
    case("header", "is_empty", None, "content-type", passed=False, id="header-is-empty-fail"),
    case("header", "is_not_empty", None, "content-type", id="header-is-not-empty"),
    case("header", "is_not_empty", None, "x-empty", passed=False, id="header-is-not-empty-fail"),
    case("header", "is_not_empty", None, "x-absent", passed=False, id="header-absent-is-not-empty"),
    case("header", "exists", None, "CONTENT-TYPE", id="header-exists"),
    case("header", "exists", None, "x-empty", id="header-empty-exists"),
    case("header", "exists", None, "x-absent", passed=False, id="header-exists-fail"),
    case("header", "not_exists", None, "x-absent", id="header-not-exists"),
    case("header", "not_exists", None, "content-type", passed=False, id="header-not-exists-fail"),
    # json_body
    case("json_body", "equals", 7, "$.id", observed=7, id="json-equals"),
    case("json_body", "equals", "7", "$.id", id="json-equals-numeric-string"),
    case("json_body", "equals", 8, "$.id", passed=False, id="json-equals-fail"),
    case("json_body", "equals", "1", "$.price", observed=1.0, id="json-float-equals-int-string"),
    case("json_body", "equals", "false", "$.completed", observed=False, id="json-bool-equals-string"),
    case("json_body", "equals", False, "$.completed", id="json-bool-equals-bool"),
    case("json_body", "equals", 0, "$.completed", passed=False, id="json-bool-is-not-zero"),
    case("json_body", "equals", "buy milk", "$.title", id="json-string-equals"),
    case("json_body", "equals", "null", "$.dueDate", observed=None, id="json-null-equals-null-text"),
    case("json_body", "equals", '["a", "b"]', "$.tags", observed=["a", "b"], id="json-array-equals-text"),
    case("json_body", "equals", 201, "$.count", observed="201", id="json-numeric-string-equals-number"),
    case("json_body", "equals", [1, 2], "$.items[*].id", observed=[1, 2], id="json-several-matches-list"),
    case("json_body", "equals", 7, "$.nope", passed=False, observed=None, id="json-missing-equals"),
    case("json_body", "not_equals", 8, "$.id", id="json-not-equals"),
    case("json_body", "not_equals", "7", "$.id", passed=False, id="json-not-equals-fail"),
    case("json_body", "not_equals", 1, "$.nope", passed=False, id="json-missing-not-equals"),
    case("json_body", "greater_than", 5, "$.id", id="json-gt"),
    case("json_body", "greater_than", 7, "$.id", passed=False, id="json-gt-fail"),
    case("json_body", "greater_than", 0, "$.completed", passed=False, id="json-gt-bool-not-number"),
    case("json_body", "less_than", 2, "$.price", id="json-lt"),
    case("json_body", "less_than", "1", "$.price", passed=False, id="json-lt-fail"),
    case("json_body", "greater_or_equal", 201, "$.count", id="json-ge-numeric-string"),
    case("json_body", "greater_or_equal", 202, "$.count", passed=False, id="json-ge-fail"),
    case("json_body", "less_or_equal", 7, "$.id", id="json-le"),
    case("json_body", "less_or_equal", 6, "$.id", passed=False, id="json-le-fail"),
    case("json_body", "less_or_equal", 6, "$.title", passed=False, id="json-le-not-a-number"),
    case("json_body", "contains", "a", "$.tags", id="json-array-contains"),
    case("json_body", "contains", "c", "$.tags", passed=False, id="json-array-contains-fail"),
    case("json_body", "contains", "2", "$.ids", id="json-array-contains-typed"),
    case("json_body", "contains", 2, "$.items[*].id", id="json-several-matches-contains"),
    case("json_body", "contains", "owner", "$.meta", id="json-object-contains-key"),
    case("json_body", "contains", "ann", "$.meta", passed=False, id="json-object-contains-not-values"),
    case("json_body", "contains", "milk", "$.title", id="json-string-contains"),
    case("json_body", "not_contains", "c", "$.tags", id="json-not-contains"),
    case("json_body", "not_contains", "a", "$.tags", passed=False, id="json-not-contains-fail"),
    case("json_body", "matches", "^buy", "$.title", id="json-matches"),
    case("json_body", "matches", "^sell", "$.title", passed=False, id="json-matches-fail"),
    case("json_body", "matches", "^7$", "$.id", id="json-number-matches"),
    case("json_body", "not_matches", "^sell", "$.title", id="json-not-matches"),
    case("json_body", "not_matches", "milk", "$.title", passed=False, id="json-not-matches-fail"),
    case("json_body", "is_empty", None, "$.empty_list", observed=[], id="json-empty-list"),
    case("json_body", "is_empty", None, "$.empty_obj", observed={}, id="json-empty-object"),
    case("json_body", "is_empty", None, "$.empty_str", id="json-empty-string"),
    case("json_body", "is_empty", None, "$.dueDate", id="json-null-is-empty"),
    case("json_body", "is_empty", None, "$.tags", passed=False, id="json-is-empty-fail"),
    case("json_body", "is_empty", None, "$.id", passed=False, id="json-number-not-empty"),
    case("json_body", "is_empty", None, "$.nope", passed=False, id="json-missing-is-not-empty"),
    case("json_body", "is_not_empty", None, "$.tags", id="json-is-not-empty"),
    case("json_body", "is_not_empty", None, "$.empty_list", passed=False, id="json-is-not-empty-fail"),
    case("json_body", "is_null", None, "$.dueDate", observed=None, id="json-is-null"),
    case("json_body", "is_null", None, "$.title", passed=False, id="json-is-null-fail"),
    case("json_body", "is_null", None, "$.nope", passed=False, id="json-missing-is-not-null"),
    case("json_body", "is_not_null", None, "$.title", id="json-is-not-null"),
    case("json_body", "is_not_null", None, "$.dueDate", passed=False, id="json-is-not-null-fail"),
    case("json_body", "is_not_null", None, "$.nope", passed=False, id="json-missing-is-not-not-null"),
    case("json_body", "exists", None, "$.dueDate", id="json-null-exists"),
    case("json_body", "exists", None, "$.nope", passed=False, id="json-exists-fail"),
    case("json_body", "not_exists", None, "$.nope", id="json-not-exists"),
    case("json_body", "not_exists", None, "$.id", passed=False, id="json-not-exists-fail"),
    case("json_body", "exists", None, "$.id", kind="html", passed=False, observed=None, id="json-on-html"),
    case("json_body", "exists", None, "$.a", kind="truncated", passed=False, id="json-on-truncated"),
    # text_body = "  Hello, World\n"
    case("text_body", "equals", "Hello, World", kind="text", observed="  Hello, World\n", id="text-equals"),
    case("text_body", "equals", "Goodbye", kind="text", passed=False, id="text-equals-fail"),
    case("text_body", "not_equals", "Goodbye", kind="text", id="text-not-equals"),
    case("text_body", "not_equals", "Hello, World", kind="text", passed=False, id="text-not-equals-fail"),
    case("text_body", "contains", "World", kind="text", id="text-contains"),
    case("text_body", "contains", "world", kind="text", passed=False, id="text-contains-case-sensitive"),
    case("text_body", "not_contains", "xyz", kind="text", id="text-not-contains"),
    case("text_body", "not_contains", "Hello", kind="text", passed=False, id="text-not-contains-fail"),
    case("text_body", "matches", r"Hello,\s+World", kind="text", id="text-matches"),
    case("text_body", "matches", "^Bye", kind="text", passed=False, id="text-matches-fail"),
    case("text_body", "not_matches", "^Bye", kind="text", id="text-not-matches"),
    case("text_body", "not_matches", "World", kind="text", passed=False, id="text-not-matches-fail"),
    case("text_body", "is_empty", None, kind="empty", observed="", id="text-is-empty"),
    case("text_body", "is_empty", None, kind="text", passed=False, id="text-is-empty-fail"),
    case("text_body", "is_not_empty", None, kind="text", id="text-is-not-empty"),
    case("text_body", "is_not_empty", None, kind="empty", passed=False, id="text-is-not-empty-fail"),
    # tls_certificate: 30 days left, issuer Example Test CA, SAN api.example.test
    case(
        "tls_certificate", "greater_than", 14, "days_until_expiry", kind="tls", observed=30, id="cert-days-gt"
    ),
    case(
        "tls_certificate",
        "greater_than",
        30,
        "days_until_expiry",
        kind="tls",
        passed=False,
        id="cert-days-gt-f",
    ),
    case("tls_certificate", "less_than", 31, "days_until_expiry", kind="tls", id="cert-days-lt"),
    case(
        "tls_certificate", "less_than", 14, "days_until_expiry", kind="tls", passed=False, id="cert-days-lt-f"
    ),
    case("tls_certificate", "greater_or_equal", 30, "days_until_expiry", kind="tls", id="cert-days-ge"),
    case(
        "tls_certificate",
        "greater_or_equal",
        31,
        "days_until_expiry",
        kind="tls",
        passed=False,
        id="cert-ge-f",
    ),
    case("tls_certificate", "less_or_equal", 30, "days_until_expiry", kind="tls", id="cert-days-le"),
    case(
        "tls_certificate", "less_or_equal", 29, "days_until_expiry", kind="tls", passed=False, id="cert-le-f"
    ),
    case("tls_certificate", "equals", True, "hostname_match", kind="tls", id="cert-hostname-match"),
    case(
        "tls_certificate", "equals", "false", "hostname_match", kind="tls", passed=False, id="cert-hostname-f"
    ),
    case("tls_certificate", "not_equals", "CN=other", "subject", kind="tls", id="cert-subject-not-equals"),
    case(
        "tls_certificate",
        "not_equals",
        "CN=api.example.test",
        "subject",
        kind="tls",
        passed=False,
        id="cert-ne-f",
    ),
    case("tls_certificate", "contains", "api.example.test", "san", kind="tls", id="cert-san-contains"),
    case(
        "tls_certificate", "contains", "evil.test", "san", kind="tls", passed=False, id="cert-san-contains-f"
    ),
    case("tls_certificate", "not_contains", "evil.test", "san", kind="tls", id="cert-san-not-contains"),
    case(
        "tls_certificate", "not_contains", "api.example.test", "san", kind="tls", passed=False, id="cert-nc-f"
    ),
    case("tls_certificate", "matches", "O=Example$", "issuer", kind="tls", id="cert-issuer-matches"),
    case(
        "tls_certificate", "matches", "Let's Encrypt", "issuer", kind="tls", passed=False, id="cert-matches-f"
    ),
    case(
        "tls_certificate", "not_matches", "Let's Encrypt", "issuer", kind="tls", id="cert-issuer-not-matches"
    ),
    case("tls_certificate", "not_matches", "Example", "issuer", kind="tls", passed=False, id="cert-nm-f"),
    case(
        "tls_certificate",
        "greater_than",
        14,
        "days_until_expiry",
        passed=False,
        observed=None,
        id="cert-on-http",
    ),
    # phase_time: dns 1.5, connect 2, tls 7.25, first byte 30, download 0.5 (ms)
    case("phase_time", "less_than", 10, "tls", kind="tls", observed=7.25, id="phase-tls-lt"),
    case("phase_time", "less_than", 5, "tls", kind="tls", passed=False, id="phase-tls-lt-fail"),
    case("phase_time", "less_or_equal", 30, "first_byte", kind="tls", id="phase-ttfb-le"),
    case(
        "phase_time", "less_or_equal", 29.9, "first_byte", kind="tls", passed=False, id="phase-ttfb-le-fail"
    ),
    case("phase_time", "greater_than", 1, "dns", kind="tls", id="phase-dns-gt"),
    case("phase_time", "greater_than", 2, "connect", kind="tls", passed=False, id="phase-connect-gt-fail"),
    case("phase_time", "greater_or_equal", 0.5, "download", kind="tls", id="phase-download-ge"),
    case("phase_time", "greater_or_equal", 1, "tls", kind="text", passed=False, id="phase-absent-is-zero"),
    # json_schema
    case("json_schema", "matches_schema", SCHEMA, observed=[], id="schema-matches"),
    case(
        "json_schema",
        "matches_schema",
        BAD_SCHEMA,
        observed=[
            "$.id: 7 is not of type 'string'",
            "$.tags[0]: 'a' is not of type 'integer'",
            "$.tags[1]: 'b' is not of type 'integer'",
        ],
        passed=False,
        id="schema-lists-failing-paths",
    ),
    case(
        "json_schema",
        "matches_schema",
        {"type": "integer"},
        "$.meta.owner",
        passed=False,
        id="schema-at-path",
    ),
    case(
        "json_schema",
        "matches_schema",
        SCHEMA,
        kind="html",
        passed=False,
        observed=None,
        id="schema-not-json",
    ),
]


@pytest.mark.parametrize(("source", "prop", "comparison", "target", "kind", "passed", "observed"), CASES)
def test_comparison(
    source: str, prop: str | None, comparison: str, target: Any, kind: str, passed: bool, observed: Any
) -> None:
    assertion = Assertion(source=source, property=prop, comparison=comparison, target=target)  # type: ignore[arg-type]
    outcome = evaluate_one(assertion, facts(kind))
    assert outcome.passed is passed, outcome.message
    if observed is not _NO:
        assert outcome.observed == observed
        assert type(outcome.observed) is type(observed)
    assert outcome.message
    assert (", expected " in outcome.message) is (not passed)
    assert outcome.comparison == comparison
    assert outcome.target == target


def test_every_comparison_on_every_source_passes_and_fails_somewhere() -> None:
    seen: dict[tuple[str, str], set[bool]] = {}
    for param in CASES:
        source, _, comparison, _, _, passed, _ = param.values
        seen.setdefault((source, comparison), set()).add(passed)
    for source, comparisons in COMPARISONS_BY_SOURCE.items():
        for comparison in comparisons:
            assert seen.get((source, comparison)) == {True, False}, (source, comparison)


@pytest.mark.parametrize(
    ("assertion", "response", "message"),
    [
        pytest.param(
            {"source": "status_code", "comparison": "equals", "target": 201},
            ResponseFacts(503, 10.0, {}),
            "status_code 503, expected equals 201",
            id="status",
        ),
        pytest.param(
            {"source": "response_time", "comparison": "less_than", "target": 500},
            ResponseFacts(200, 812.26, {}),
            "response_time 812 ms, expected less than 500 ms",
            id="response-time",
        ),
        pytest.param(
            {"source": "json_body", "property": "$.title", "comparison": "equals", "target": "a"},
            ResponseFacts(200, 1.0, {}, b'{"title": "b"}'),
            'json_body $.title "b", expected equals "a"',
            id="json-string",
        ),
        pytest.param(
            {"source": "json_body", "property": "$.x", "comparison": "is_null"},
            ResponseFacts(200, 1.0, {}, b"{}"),
            "json_body $.x not found, expected is null",
            id="json-missing",
        ),
        pytest.param(
            {"source": "header", "property": "X-Id", "comparison": "exists"},
            ResponseFacts(200, 1.0, {}),
            "header X-Id not found, expected exists",
            id="header-missing",
        ),
        pytest.param(
            {"source": "header", "property": "X-Id", "comparison": "equals", "target": "1"},
            ResponseFacts(200, 1.0, {}),
            'header X-Id absent, expected equals "1"',
            id="header-absent",
        ),
        pytest.param(
            {"source": "status_code", "comparison": "equals", "target": 200},
            ResponseFacts(200, 1.0, {}),
            "status_code 200 equals 200",
            id="passing",
        ),
    ],
)
def test_messages_read_like_a_sentence(
    assertion: dict[str, Any], response: ResponseFacts, message: str
) -> None:
    assert evaluate_one(Assertion.model_validate(assertion), response).message == message


def test_non_json_body_says_why() -> None:
    assertion = Assertion(source="json_body", property="$.id", comparison="exists")
    outcome = evaluate_one(assertion, facts("html"))
    assert outcome.message is not None
    assert outcome.message.startswith("json_body $.id: body is not JSON")


def test_observed_values_are_bounded_and_json_safe() -> None:
    long_text = "x" * 5000
    document = {"long": long_text, "many": list(range(1000)), "deep": [[[[[[[[1]]]]]]]]}
    response = ResponseFacts(200, 1.0, {"x-long": long_text}, json.dumps(document).encode())
    header = evaluate_one(Assertion(source="header", property="x-long", comparison="exists"), response)
    assert len(header.observed) == OBSERVED_MAX_CHARS
    many = evaluate_one(Assertion(source="json_body", property="$.many", comparison="is_not_empty"), response)
    assert len(many.observed) == OBSERVED_MAX_ITEMS + 1
    assert many.observed[-1] == f"… {1000 - OBSERVED_MAX_ITEMS} more"
    deep = evaluate_one(Assertion(source="json_body", property="$.deep", comparison="is_not_empty"), response)
    json.dumps(deep.observed, allow_nan=False)
    assert bounded(float("nan")) == "nan"
    assert bounded({"a": float("inf")}) == {"a": "inf"}


def test_text_body_uses_the_declared_charset() -> None:
    response = ResponseFacts(200, 1.0, {}, "café".encode("latin-1"), charset="latin-1")
    outcome = evaluate_one(Assertion(source="text_body", comparison="contains", target="café"), response)
    assert outcome.passed


def test_body_is_parsed_once_and_only_when_needed() -> None:
    response = facts("json")
    evaluate([Assertion(source="status_code", comparison="equals", target=201)], response)
    assert "document" not in response.__dict__
    assert "text" not in response.__dict__
    evaluate([Assertion(source="json_body", property="$.id", comparison="exists")], response)
    assert "document" in response.__dict__


def test_no_assertions_default_to_status_below_400() -> None:
    [outcome] = evaluate([], ResponseFacts(500, 1.0, {}))
    assert (outcome.source, outcome.comparison, outcome.target, outcome.passed) == (
        "status_code",
        "less_than",
        400,
        False,
    )


def test_needs_json() -> None:
    assert needs_json([Assertion(source="json_body", property="$.a", comparison="exists")])
    assert not needs_json([Assertion(source="text_body", comparison="is_empty")])


@pytest.mark.parametrize(
    "path",
    ["$.a", "$.a.b", "$.a.b.c", "$.list.a", "$.missing.x", "$.n.x", "$.s.length", "$.nul.x"],
    ids=lambda path: path,
)
def test_plain_paths_agree_with_jsonpath_ng(path: str) -> None:
    from jsonpath_ng.ext.parser import parse

    document = {"a": {"b": {"c": 1}}, "list": [{"a": 1}], "n": 3, "s": "abc", "nul": None}
    response = ResponseFacts(200, 1.0, {}, json.dumps(document).encode())
    outcome = evaluate_one(Assertion(source="json_body", property=path, comparison="exists"), response)
    matches = [match.value for match in parse(path).find(document)]
    assert outcome.passed is bool(matches)
    assert outcome.observed == (matches[0] if matches else None)


@pytest.mark.parametrize(
    ("body", "sample_chars", "text", "more"),
    [
        pytest.param(b"short", 10, "short", False, id="whole"),
        pytest.param(b"x" * 100, 10, "x" * 10, True, id="cut"),
        pytest.param("é".encode() * 100, 10, "é" * 10, True, id="multibyte-cut"),
    ],
)
def test_text_prefix(body: bytes, sample_chars: int, text: str, more: bool) -> None:
    assert ResponseFacts(200, 1.0, {}, body).text_prefix(sample_chars) == (text, more)
