"""The REST API fuzzed from its own OpenAPI schema (schemathesis, a bounded number of examples per
operation): no answer is a server error, and an editor's answers never carry another user's data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from services.api.accounts import create_user
from services.api.app import create_app
from services.api.auth import create_token
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.settings import Settings

ADMIN_TOKEN = "fuzz-admin-token"
#: Examples per operation: enough to reach every parameter's edge cases, few enough for ~60 s in all.
EXAMPLES = 6
#: What belongs to "bob" and must never reach "alice" (an editor fuzzing the API with her own token).
BOBS_TOKEN_NAME = "bobs-deploy-token-7f3a"


class Fuzzed:
    """The app under fuzzing and the token it is fuzzed with."""

    def __init__(self, app: Any, token: str, secrets: list[str]) -> None:
        self.app = app
        self.token = token
        self.secrets = secrets


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{data_dir / 'seymour.db'}"
    upgrade_sync(url)

    async def people() -> tuple[str, list[str]]:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        alice = await create_user(sessions, "alice", "alice-password-1", role="editor")
        bob = await create_user(sessions, "bob", "bob-password-1", role="editor")
        bob_row, bob_token = await create_token(sessions, BOBS_TOKEN_NAME, bob.id)
        _, alice_token = await create_token(sessions, "alice's", alice.id)
        await engine.dispose()
        return alice_token, [bob_token, bob_token[:10], BOBS_TOKEN_NAME, str(bob_row.id), bob.password_hash]

    token, secrets = asyncio.run(people())
    engine = make_engine(url)

    class Quiet:
        async def publish(self, message: Any, **_: Any) -> None:
            return None

    settings = Settings(api_token=ADMIN_TOKEN, data_dir=data_dir)
    app = create_app(settings, sessions=make_sessionmaker(engine), bus=Quiet())
    yield Fuzzed(app, token, secrets)
    asyncio.run(engine.dispose())


@pytest.mark.slow
def test_no_server_error_and_no_other_users_data(fuzzed: Fuzzed) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/schema/openapi.json", fuzzed.app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    alice = {"Authorization": f"Bearer {fuzzed.token}"}
    tried: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tried.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=alice)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.text[:500]}"
            for secret in fuzzed.secrets:
                assert secret not in response.text, f"{where} leaked another user's data"

        fuzz()
    assert len(tried) >= 30, tried
