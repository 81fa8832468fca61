"""A UI app on a fresh SQLite file, an admin user, and a helper that logs a test client in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from services.api.app import create_app
from services.api.ui.accounts import create_user
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings

PASSWORD = "correct horse battery"
TOKEN = "ui-test-admin-token"


@dataclass
class Published:
    """Records what the app published."""

    items: list[Any] = field(default_factory=list)

    async def publish(self, message: Any, **_: Any) -> None:
        self.items.append(message)


@dataclass
class Ui:
    client: AsyncTestClient[Any]
    sessions: Any
    published: Published
    csrf: str = ""

    async def login(self, username: str = "admin", password: str = PASSWORD) -> None:
        """Log in through the login form, and remember the session's CSRF token."""
        page = await self.client.get("/login")
        token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert token is not None
        response = await self.client.post(
            "/login",
            data={"username": username, "password": password, "_csrf": token.group(1), "next": "/"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        home = await self.client.get("/")
        found = re.search(r'name="_csrf" value="([^"]+)"', home.text)
        assert found is not None
        self.csrf = found.group(1)

    async def post_form(self, path: str, data: Any, **kwargs: Any) -> Any:
        """POST a form with the CSRF field."""
        data = {**data, "_csrf": self.csrf} if isinstance(data, dict) else [*data, ("_csrf", self.csrf)]
        return await self.client.post(path, data=data, **kwargs)


@pytest.fixture
async def ui(sqlite_url: str) -> AsyncIterator[Ui]:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    await create_user(sessions, "admin", PASSWORD, is_admin=True)
    published = Published()
    app = create_app(Settings(api_token=TOKEN), sessions=sessions, bus=published)
    async with AsyncTestClient(app=app) as client:
        yield Ui(client, sessions, published)
    await engine.dispose()
