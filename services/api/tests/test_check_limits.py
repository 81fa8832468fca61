"""Configuration a runner cannot afford is refused when saved, with a 422 naming the field."""

from __future__ import annotations

import copy
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
