"""``seymour secrets rotate``: every sealed secret (a check's, a global one) opens with the new key
afterwards and no longer with the old; a wrong old key changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contracts.v1 import CheckSpec
from services.cli import main as cli_main
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Check, Setting
from services.common.sealing import open_spec, seal_spec
from services.common.secretbox import SealError, SecretBox

OLD, NEW = "old-deployment-key", "new-deployment-key"


def box(key: str) -> SecretBox:
    return SecretBox(hashlib.sha256(key.encode()).digest())


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def _store(url: str) -> None:
    engine = make_engine(url)
    old = box(OLD)
    async with make_sessionmaker(engine)() as session, session.begin():
        session.add(
            Check(
                name="sealed",
                spec={"name": "sealed", "secrets": {"token": old.seal("check-secret")}, "regions": []},
            )
        )
        session.add(Setting(key="rotation-test", value={"db": old.seal("global-secret"), "plain": "x"}))
    await engine.dispose()


async def _sealed(url: str) -> list[str]:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        check = (await session.execute(select(Check))).scalar_one()
        setting = await session.get(Setting, "rotation-test")
    await engine.dispose()
    assert setting is not None
    assert setting.value["plain"] == "x"
    return [check.spec["secrets"]["token"], setting.value["db"]]


def _rotate(monkeypatch: Any, url: str, old: str) -> int:
    monkeypatch.setenv("SEYMOUR_DATABASE_URL", url)
    monkeypatch.setenv("SEYMOUR_SECRET_KEY", NEW)
    monkeypatch.setenv("SEYMOUR_OLD_SECRET_KEY", old)
    return cli_main(["secrets", "rotate"])


def test_rotation_reseals_every_secret_under_the_new_key(
    db_url: str, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    asyncio.run(_store(db_url))
    before = asyncio.run(_sealed(db_url))
    assert _rotate(monkeypatch, db_url, "not-the-old-key") == 1
    assert asyncio.run(_sealed(db_url)) == before, "a wrong old key changes nothing"
    assert _rotate(monkeypatch, db_url, OLD) == 0
    after = asyncio.run(_sealed(db_url))
    assert [box(NEW).open(value) for value in after] == ["check-secret", "global-secret"]
    for value in after:
        with pytest.raises(SealError):
            box(OLD).open(value)


async def _store_spec(url: str, spec: dict[str, Any]) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session, session.begin():
        session.add(Check(name=spec["name"], spec=seal_spec(spec, box(OLD))))
    await engine.dispose()


async def _spec(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        check = (await session.execute(select(Check))).scalar_one()
    await engine.dispose()
    return dict(check.spec)


def test_rotation_reseals_secret_headers_and_channel_secrets(
    db_url: str, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = CheckSpec.model_validate(
        {
            "name": "headers-and-channels",
            "request": {"url": "https://api.example.com/", "headers": {"X-Api-Key": "header-value"}},
            "regions": ["eu-north-1"],
            "alerts": [
                {"channel": "webhook", "url": "https://hooks.example.com/secret-path", "secret": "signing"},
                {"channel": "telegram", "chat_id": "42", "bot_token": "bot-token"},
            ],
        }
    ).model_dump(mode="json")
    asyncio.run(_store_spec(db_url, spec))
    assert _rotate(monkeypatch, db_url, OLD) == 0
    rotated = asyncio.run(_spec(db_url))
    assert open_spec(rotated, box(NEW)) == spec
    with pytest.raises(SealError):
        open_spec(rotated, box(OLD))
