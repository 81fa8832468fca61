"""The placeholder language: what it renders, what it refuses, and that it cannot reach outside its tables."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.v1.checks import CheckSpec, RequestSpec
from contracts.v1.templates import TemplateError, parse
from services.runner.templating import Context, MissingValue, render_json, render_request, render_text

NOW = datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC)


def context(**changes: Any) -> Context:
    base = Context(
        steps={"create": {"id": 42, "tags": ["a", "b"], "name": "card"}},
        variables={"base_url": "http://127.0.0.1:8080", "nested": "{{ secrets.key }}"},
        secrets={"key": "hunter2"},
        clock=lambda: NOW,
        rng=random.Random(7),
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{{ steps.create.id }}", "42", id="extracted"),
        pytest.param("{{steps.create.name}}-x", "card-x", id="no-spaces"),
        pytest.param("{{ vars.base_url }}/api", "http://127.0.0.1:8080/api", id="variable"),
        pytest.param("Bearer {{ secrets.key }}", "Bearer hunter2", id="secret"),
        pytest.param("{{ now }}", "2026-12-01T08:30:05Z", id="now-iso"),
        pytest.param('{{ now("%Y-%m-%d") }}', "2026-12-01", id="now-format"),
        pytest.param('{{ now("unix") }}', str(int(NOW.timestamp())), id="now-unix"),
        pytest.param("{{ random_int(3, 3) }}", "3", id="random-int"),
        pytest.param("{{ steps.create.tags }}", '["a","b"]', id="json-value"),
        pytest.param("{{ vars.nested }}", "{{ secrets.key }}", id="values-are-not-rendered-again"),
        pytest.param("plain {text} and } braces", "plain {text} and } braces", id="no-placeholder"),
    ],
)
def test_render_text(template: str, expected: str) -> None:
    assert render_text(template, context()) == expected


def test_uuid_and_random_int_are_fresh_and_in_range() -> None:
    ctx = Context()
    uuids = {render_text("{{ uuid }}", ctx) for _ in range(50)}
    numbers = {int(render_text("{{ random_int(1, 6) }}", ctx)) for _ in range(200)}
    assert len(uuids) == 50
    assert all(len(value) == 36 for value in uuids)
    assert numbers == {1, 2, 3, 4, 5, 6}


def test_json_body_keeps_the_type_of_a_whole_placeholder() -> None:
    body = {
        "id": "{{ steps.create.id }}",
        "n": "{{ random_int(9, 9) }}",
        "label": "card {{ steps.create.id }}",
    }
    assert render_json(body, context()) == {"id": 42, "n": 9, "label": "card 42"}


SECRET_FILE_TEXT = "contents-of-a-private-file"


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ open('/etc/passwd').read() }}", id="call-open"),
        pytest.param("{{ __import__('os').environ }}", id="import"),
        pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", id="mro-walk"),
        pytest.param("{{ vars.base_url.__class__ }}", id="attribute-of-variable"),
        pytest.param("{{ steps.create.id.real }}", id="attribute-of-extracted"),
        pytest.param("{{ config }}", id="jinja-config"),
        pytest.param("{{ self.__init__.__globals__ }}", id="jinja-self"),
        pytest.param("{{ env.HOME }}", id="environment"),
        pytest.param("{{ vars['base_url'] }}", id="subscript"),
        pytest.param('{{ now("%Y") }}{{ now("{{ secrets.key }}") }}', id="nested-in-format"),
        pytest.param("{% for x in range(10**9) %}{% endfor %}{{ x", id="statement-and-unclosed"),
        pytest.param("{{ random_int(1, 10**99) }}", id="huge-random"),
    ],
)
def test_a_template_cannot_evaluate_code(template: str) -> None:
    with pytest.raises(TemplateError):
        parse(template)


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ vars.__class__ }}", id="dunder-variable"),
        pytest.param("{{ vars.HOME }}", id="environment-name"),
        pytest.param("{{ secrets.__dict__ }}", id="dunder-secret"),
        pytest.param("{{ steps.__globals__.os }}", id="dunder-step"),
        pytest.param("{{ vars.PATH }}", id="path"),
    ],
)
def test_a_template_reads_only_its_own_tables(
    template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", SECRET_FILE_TEXT)
    (tmp_path / "secret").write_text(SECRET_FILE_TEXT)
    with pytest.raises(MissingValue):
        render_text(template, context())
    assert os.environ["HOME"] == SECRET_FILE_TEXT


def test_rendered_request_must_still_be_a_valid_request() -> None:
    request = RequestSpec(url="{{ vars.base_url }}/x", headers={"X-Id": "{{ steps.create.name }}"})
    evil = context(steps={"create": {"name": "a\r\nX-Injected: 1"}})
    with pytest.raises(TemplateError, match="line break"):
        render_request(request, evil)
    with pytest.raises(TemplateError, match="not an http"):
        render_request(request, context(variables={"base_url": "file:///etc"}))


BASE = {"name": "c", "regions": ["us-east-1"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"request": {"url": "http://127.0.0.1/{{ steps.create.id }}"}},
            "refers to no earlier step",
            id="single-request-cannot-use-steps",
        ),
        pytest.param(
            {
                "steps": [
                    {"name": "a", "request": {"url": "http://127.0.0.1/{{ steps.b.id }}"}},
                    {
                        "name": "b",
                        "request": {"url": "http://127.0.0.1/"},
                        "extract": [{"name": "id", "source": "status_code"}],
                    },
                ]
            },
            "refers to no earlier step",
            id="later-step",
        ),
        pytest.param(
            {
                "steps": [
                    {"name": "a", "request": {"url": "http://127.0.0.1/"}},
                    {"name": "b", "request": {"url": "http://127.0.0.1/{{ steps.a.id }}"}},
                ]
            },
            "step 'a' extracts no 'id'",
            id="unknown-extraction",
        ),
        pytest.param(
            {"request": {"url": "http://127.0.0.1/{{ nope }}"}}, "unknown placeholder", id="unknown-builtin"
        ),
        pytest.param({"request": {"url": "http://127.0.0.1/{{ uuid"}}, "unclosed", id="unclosed"),
        pytest.param({"request": {"url": "ftp://{{ vars.host }}/"}}, "http", id="literal-scheme"),
        pytest.param({"request": {"url": "{{ uuid }}/x"}}, "vars", id="url-starts-with-builtin"),
        pytest.param(
            {
                "request": {"url": "http://127.0.0.1/"},
                "teardown": [{"name": "t", "request": {"url": "http://127.0.0.1/"}}],
            },
            "teardown needs steps",
            id="teardown-without-steps",
        ),
        pytest.param(
            {
                "steps": [
                    {"name": "a", "request": {"url": "http://127.0.0.1/"}},
                    {"name": "a", "request": {"url": "http://127.0.0.1/"}},
                ]
            },
            "unique",
            id="repeated-step-name",
        ),
        pytest.param(
            {
                "request": {"url": "http://127.0.0.1/other"},
                "steps": [{"name": "a", "request": {"url": "http://127.0.0.1/"}}],
            },
            "first step",
            id="request-differs-from-first-step",
        ),
        pytest.param(
            {"steps": [{"name": "a b", "request": {"url": "http://127.0.0.1/"}}]},
            "step name",
            id="bad-step-name",
        ),
    ],
)
def test_unknown_variables_are_caught_when_the_check_is_saved(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CheckSpec.model_validate({**BASE, **data})


def test_a_multi_step_spec_round_trips_and_exposes_its_first_step_as_the_request() -> None:
    spec = CheckSpec.model_validate(
        {
            **BASE,
            "variables": {"base": "http://127.0.0.1"},
            "steps": [
                {
                    "name": "a",
                    "request": {"url": "{{ vars.base }}/a"},
                    "extract": [{"name": "id", "source": "status_code"}],
                },
                {
                    "name": "b",
                    "request": {
                        "url": "{{ vars.base }}/b/{{ steps.a.id }}",
                        "headers": {"K": "{{ secrets.k }}"},
                    },
                },
            ],
        }
    )
    assert spec.request.url == "{{ vars.base }}/a"
    assert CheckSpec.model_validate(spec.model_dump(mode="json")) == spec
    assert spec.referenced("vars") == {"base"}
    assert spec.referenced("secrets") == {"k"}
