"""An api app on a fresh SQLite file with a recording publisher, and a client holding a valid token."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from contracts.v1 import CheckSpec
from services.api.app import create_app
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.sealing import open_spec
from services.common.secretbox import SecretBox
from services.common.settings import Settings

TOKEN = "test-admin-token"
DEPLOYMENT_KEY = "api-test-deployment-key"


def opened(spec: CheckSpec | None) -> CheckSpec:
    """A stored or published spec with its sealed headers and channel secrets opened (the router and
    alert delivery do this with the deployment key; a test reads what would be sent)."""
    assert spec is not None
    assert not [secret for secret in ("s3cret", "very-secret") if secret in spec.model_dump_json()]
    box = SecretBox(hashlib.sha256(DEPLOYMENT_KEY.encode()).digest())
    return CheckSpec.model_validate(open_spec(spec.model_dump(mode="json"), box))


@dataclass
class Published:
    """A fake publisher: records what the api published (the test client may run the app in another
    thread, so the in-process bus is not used here; end-to-end tests cover the real buses)."""

    items: list[Any] = field(default_factory=list)

    async def publish(self, message: Any, **_: Any) -> None:
        self.items.append(message)

    async def dead_letter_count(self) -> int:
        return 0


@dataclass
class Api:
    client: AsyncTestClient[Any]
    sessions: Any
    published: Published


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[Api]:
    async for made in _api(sqlite_url):
        yield made


@pytest.fixture
async def pg_api(pg_url: str) -> AsyncIterator[Api]:
    """The api on PostgreSQL, for what only its concurrency can show."""
    async for made in _api(pg_url):
        yield made


async def _api(url: str) -> AsyncIterator[Api]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    published = Published()
    app = create_app(Settings(api_token=TOKEN, secret_key=DEPLOYMENT_KEY), sessions=sessions, bus=published)
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield Api(client, sessions, published)
    await engine.dispose()
