"""The migration that seals secret headers and channel secrets already stored in clear: up seals them
(the rows no longer hold them), down gives the very spec back, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.common.db.engine import downgrade_sync, make_engine, make_sessionmaker, upgrade_sync
from services.common.db.models import Check
from services.common.sealing import open_spec
from services.common.secretbox import SecretBox

KEY = "migration-test-deployment-key"
CLEAR = ("Bearer typed-in-clear", "tenant-in-clear", "slack-in-clear", "pd-in-clear", "bot-in-clear")


def _spec() -> dict[str, Any]:
    return CheckSpec.model_validate(
        {
            "name": "stored-before-sealing",
            "request": {
                "url": "https://api.example.com/cards",
                "headers": {"Authorization": "Bearer typed-in-clear", "X-Tenant": "tenant-in-clear"},
                "secret_headers": ["X-Tenant"],
            },
            "regions": ["eu-north-1"],
            "alerts": [
                {"channel": "slack", "url": "https://hooks.slack.com/services/slack-in-clear"},
                {"channel": "pagerduty", "routing_key": "pd-in-clear"},
                {"channel": "telegram", "chat_id": "42", "bot_token": "bot-in-clear"},
            ],
        }
    ).model_dump(mode="json")


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url_empty"))


async def _insert(url: str, spec: dict[str, Any]) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session, session.begin():
        now = utcnow()
        session.add(
            Check(
                id=uuid.uuid4(),
                name=spec["name"],
                spec=spec,
                enabled=True,
                revision=1,
                created_at=now,
                updated_at=now,
            )
        )
    await engine.dispose()


async def _stored(url: str) -> tuple[str, Any]:
    engine = make_engine(url)
    async with engine.connect() as connection:
        raw = (await connection.execute(text("SELECT CAST(spec AS TEXT) FROM checks"))).scalar_one()
    async with make_sessionmaker(engine)() as session:
        spec = (await session.execute(text("SELECT spec FROM checks"))).scalar_one()
    await engine.dispose()
    return str(raw), spec


def test_up_seals_what_was_stored_in_clear_and_down_opens_it(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEYMOUR_SECRET_KEY", KEY)
    upgrade_sync(empty_url, "0008")
    spec = _spec()
    asyncio.run(_insert(empty_url, spec))
    raw, _ = asyncio.run(_stored(empty_url))
    assert all(secret in raw for secret in CLEAR), "the attack works on the old schema"

    upgrade_sync(empty_url)
    raw, _ = asyncio.run(_stored(empty_url))
    for secret in CLEAR:
        assert secret not in raw
    assert "api.example.com" in raw
    box = SecretBox(hashlib.sha256(KEY.encode()).digest())
    sealed = CheckSpec.model_validate(_loaded(asyncio.run(_stored(empty_url))[1]))
    assert open_spec(sealed.model_dump(mode="json"), box) == spec

    downgrade_sync(empty_url, "0008")
    assert _loaded(asyncio.run(_stored(empty_url))[1]) == spec
    upgrade_sync(empty_url)
    upgrade_sync(empty_url)  # sealing twice changes nothing
    assert open_spec(_loaded(asyncio.run(_stored(empty_url))[1]), box) == spec


def _loaded(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else dict(json.loads(value))
