"""Sealing a spec's secret headers and channel secrets: nothing secret left in clear, the spec still
valid, opened back exactly as typed; and the router opens a secret header only into the run's own
message, where the runner renders it."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from contracts.v1 import CheckDue, CheckSpec
from contracts.v1.base import utcnow
from services.common.redaction import MASK
from services.common.sealing import open_spec, seal_spec
from services.common.secretbox import SealError, SecretBox
from services.router.fanout import fan_out
from services.runner.templating import Context, render_request

BOX = SecretBox(hashlib.sha256(b"sealing-test").digest())
OTHER = SecretBox(hashlib.sha256(b"another-deployment").digest())


def spec() -> dict[str, Any]:
    request = {
        "url": "https://api.example.com/login",
        "headers": {
            "Authorization": "Basic b3BzOmh1bnRlcjI=",
            "X-Tenant": "acme-tenant-7",
            "Accept": "application/json",
        },
        "secret_headers": ["X-Tenant"],
    }
    return CheckSpec.model_validate(
        {
            "name": "sealed",
            "regions": ["eu-north-1", "us-east-1"],
            "variables": {"v": "2"},
            "secrets": {"own": BOX.seal("users-own-secret")},
            "steps": [
                {"name": "login", "request": request, "extract": []},
                {
                    "name": "read",
                    "request": {
                        "url": "https://api.example.com/me",
                        "headers": {
                            "Authorization": "Bearer {{ secrets.own }}",
                            "X-Api-Key": "k-{{ vars.v }}-tail-secret",
                        },
                    },
                },
            ],
            "alerts": [
                {"channel": "slack", "url": "https://hooks.slack.com/services/T0/B0/xyz"},
                {"channel": "email", "to": ["ops@example.com"]},
                {"channel": "telegram", "chat_id": "42", "bot_token": "12:bot-token"},
            ],
        }
    ).model_dump(mode="json")


TYPED = ("b3BzOmh1bnRlcjI=", "acme-tenant-7", "tail-secret", "hooks.slack.com/services", "12:bot-token")


def test_sealed_spec_holds_nothing_typed_and_opens_back_exactly() -> None:
    typed = spec()
    sealed = seal_spec(typed, BOX)
    text = str(sealed)
    for secret in TYPED:
        assert secret not in text
    assert "application/json" in text, "headers that are not secret stay readable"
    assert "ops@example.com" in text
    validated = CheckSpec.model_validate(sealed)
    assert validated.request == validated.steps[0].request
    assert validated.steps[1].request.headers["Authorization"].endswith("{{ secrets.own }}"), (
        "a placeholder the user wrote stays; only the text around it is sealed"
    )
    assert seal_spec(sealed, BOX) == sealed, "sealing twice changes nothing"
    assert open_spec(sealed, BOX) == typed


def test_a_key_that_cannot_open_raises_or_shows_the_mask() -> None:
    sealed = seal_spec(spec(), BOX)
    with pytest.raises(SealError):
        open_spec(sealed, OTHER)
    shown = open_spec(sealed, OTHER, strict=False)
    assert shown["steps"][0]["request"]["headers"]["X-Tenant"] == MASK
    assert shown["alerts"][0]["url"] == MASK


def test_the_router_opens_a_secret_header_only_into_the_run_that_sends_it() -> None:
    sealed = CheckSpec.model_validate(seal_spec(spec(), BOX))
    due = CheckDue(check_id=uuid.uuid4(), slot=utcnow(), revision=1, spec=sealed)
    runs = fan_out(due, ttl=30, box=BOX)
    assert len(runs) == 2
    for run in runs:
        assert run.spec.secrets == {}
        assert run.spec.alerts == []
        assert "acme-tenant-7" not in run.spec.model_dump_json()
        assert run.secrets is not None
        rendered = render_request(
            run.spec.steps[0].request, Context(variables={"v": "2"}, secrets=run.secrets)
        )
        assert rendered.headers["X-Tenant"] == "acme-tenant-7"
        assert rendered.headers["Authorization"] == "Basic b3BzOmh1bnRlcjI="
        second = render_request(run.spec.steps[1].request, Context(variables={"v": "2"}, secrets=run.secrets))
        assert second.headers["X-Api-Key"] == "k-2-tail-secret"
        assert second.headers["Authorization"] == "Bearer users-own-secret"
    assert "acme-tenant-7" not in due.model_dump_json(), "the slot on the bus carries it sealed"
