"""Configuration a runner cannot afford is refused when saved, with a 422 naming the field."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from tests.support.servers import demo_check

from .conftest import Api

BASE: dict[str, Any] = demo_check("http://127.0.0.1:9/todos", "http://127.0.0.1:9/hook", interval=60)


def _with_assertion(assertion: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body["assertions"] = [assertion]
    return body


REGEXES = [
    ({"source": "text_body", "comparison": "matches", "target": "(?=x)x"}, "assertions.0", "target"),
    (
        {"source": "header", "property": "ETag", "comparison": "not_matches", "target": "(a)\\1"},
        "assertions.0",
        "target",
    ),
    (
        {"source": "json_body", "property": '$.items[?(@.name =~ "(?<=a)b")]', "comparison": "exists"},
        "assertions.0",
        "property",
    ),
]


@pytest.mark.parametrize(
    ("assertion", "field", "words"), REGEXES, ids=["lookahead", "backreference", "jsonpath-filter-lookbehind"]
)
async def test_regex_the_engine_cannot_run_is_422(
    api: Api, assertion: dict[str, Any], field: str, words: str
) -> None:
    response = await api.client.post("/api/v1/checks", json=_with_assertion(assertion))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    assert (
        errors[0]["message"].startswith(words)
        or f"property '{assertion.get('property')}'" in errors[0]["message"]
    )
    assert "RE2" in errors[0]["message"]
    assert (await api.client.get("/api/v1/checks")).json()["total"] == 0


async def test_catastrophic_but_linear_regex_is_accepted(api: Api) -> None:
    """``^(a+)+$`` is fine for RE2: it is refused only by engines that backtrack."""
    response = await api.client.post(
        "/api/v1/checks",
        json=_with_assertion({"source": "text_body", "comparison": "matches", "target": "^(a+)+$"}),
    )
    assert response.status_code == 201, response.text


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    target: Any = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return body


OVERSIZED = [
    ("request.url", "http://127.0.0.1/?q=" + "x" * 5000, "request.url", "url is 5,020 characters long"),
    ("request.headers", {f"X-H{i}": "v" for i in range(51)}, "request.headers", "51 headers"),
    ("request.headers", {"X-Big": "v" * 9000}, "request.headers", "header 'X-Big' value is 9,000"),
    ("request.body", "x" * 40_000, "request.body", "body is 40,000 bytes"),
    ("request.body", {"items": ["x" * 100] * 400}, "request.body", "body is 41,211 bytes"),
    ("assertions.2.property", "$." + "a" * 2000, "assertions.2", "property is 2,002 characters"),
    ("assertions.2.target", "x" * 20_000, "assertions.2", "target is 20,002 bytes"),
    (
        "assertions",
        [{"source": "status_code", "comparison": "equals", "target": 200}] * 101,
        "assertions",
        "101",
    ),
    ("alerts.0.url", "http://127.0.0.1/" + "h" * 5000, "alerts.0.url", "url is 5,017 characters long"),
    ("request.headers", {f"X-H{i}": "v" * 8000 for i in range(20)}, "body", "the check is 16"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    OVERSIZED,
    ids=[f"{p}-{w.split()[0]}-{i}" for i, (p, _, _, w) in enumerate(OVERSIZED)],
)
async def test_oversized_config_is_422_naming_the_field(
    api: Api, path: str, value: Any, field: str, words: str
) -> None:
    response = await api.client.post("/api/v1/checks", json=_with(path, value))
    assert response.status_code == 422, response.text[:300]
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field], errors
    assert words in errors[0]["message"], errors[0]["message"]


async def test_a_huge_jsonpath_is_refused_before_it_is_parsed(api: Api) -> None:
    """A 5 MB JSONPath took tens of seconds to parse on the api's loop, then rode the bus every interval."""
    huge = "$" + ".a" * 2_500_000
    started = time.monotonic()
    response = await api.client.post("/api/v1/checks", json=_with("assertions.2.property", huge))
    assert response.status_code == 422, response.text[:300]
    assert time.monotonic() - started < 3.0
    assert "the check is 5,0" in response.json()["errors"][0]["message"]
    assert (await api.client.get("/api/v1/checks")).json()["total"] == 0
