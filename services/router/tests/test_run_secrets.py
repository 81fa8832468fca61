"""A run carries, in clear, only the secrets its requests use; its spec carries no sealed value."""

from __future__ import annotations

import uuid

from contracts.v1 import CheckDue, CheckSpec, utcnow
from services.common.secretbox import deployment_box
from services.common.settings import Settings
from services.router.fanout import fan_out

BOX = deployment_box(Settings(secret_key="router test key"))


def test_runs_carry_only_the_secrets_they_use() -> None:
    spec = CheckSpec(
        name="secrets",
        request={  # type: ignore[arg-type]
            "url": "http://127.0.0.1:9/",
            "headers": {"Authorization": "Bearer {{ secrets.token }}", "X-Shared": "{{ secrets.shared }}"},
        },
        regions=["us-east-1", "eu-north-1"],
        secrets={"token": BOX.seal("own-token"), "unused": BOX.seal("never-shipped")},
        global_secrets={"shared": BOX.seal("global-value")},
    )
    due = CheckDue(check_id=uuid.UUID(int=1), slot=utcnow(), revision=1, spec=spec)

    runs = fan_out(due, ttl=30, box=BOX)

    assert [run.secrets for run in runs] == [{"shared": "global-value", "token": "own-token"}] * 2
    for run in runs:
        assert run.spec.secrets == {}
        assert run.spec.global_secrets == {}
        assert "never-shipped" not in run.model_dump_json()
        assert "sealed:" not in run.model_dump_json()


def test_a_key_that_cannot_open_a_secret_ships_none_of_it() -> None:
    spec = CheckSpec(
        name="secrets",
        request={"url": "http://127.0.0.1:9/", "headers": {"K": "{{ secrets.token }}"}},  # type: ignore[arg-type]
        regions=["us-east-1"],
        secrets={"token": deployment_box(Settings(secret_key="another key")).seal("x")},
    )
    (run,) = fan_out(
        CheckDue(check_id=uuid.UUID(int=1), slot=utcnow(), revision=1, spec=spec), ttl=30, box=BOX
    )
    assert run.secrets == {}
