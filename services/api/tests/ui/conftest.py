"""A UI app on a fresh SQLite file, an admin user, and a helper that logs a test client in."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from services.api.accounts import create_user, find_user, load_session, open_session
from services.api.app import create_app
from services.api.ui.security import SESSION_COOKIE
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.sealing import open_spec
from services.common.secretbox import SecretBox
from services.common.settings import Settings

PASSWORD = "correct horse battery"
TOKEN = "ui-test-admin-token"
DEPLOYMENT_KEY = "ui-test-deployment-key"


def opened(spec: Any) -> dict[str, Any]:
    """A stored or published spec (JSON or ``CheckSpec``) with its sealed header and channel secrets
    opened, as the router and alert delivery open them."""
    data = spec.model_dump(mode="json") if hasattr(spec, "model_dump") else spec
    return open_spec(data, SecretBox(hashlib.sha256(DEPLOYMENT_KEY.encode()).digest()))


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

    async def sign_in(self, username: str = "admin") -> None:
        """Start a session without the login form (argon2 takes ~0.3 s; the form has its own tests)."""
        user = await find_user(self.sessions, username=username)
        self.client.cookies.set(SESSION_COOKIE, await open_session(self.sessions, user))
        loaded = await load_session(self.sessions, self.client.cookies[SESSION_COOKIE])
        assert loaded is not None
        self.csrf = loaded.csrf_token

    async def post_form(self, path: str, data: Any, **kwargs: Any) -> Any:
        """POST a form with the CSRF field."""
        if not isinstance(data, dict):
            grouped: dict[str, list[str]] = {}
            for name, value in data:
                grouped.setdefault(name, []).append(value)
            data = grouped
        data = {**data, "_csrf": self.csrf}
        return await self.client.post(path, data=data, **kwargs)


@pytest.fixture(scope="session")
def ui_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the admin user, made once and copied for each test (migrations and
    argon2 hashing take about a second; a copy takes a millisecond)."""
    path = tmp_path_factory.mktemp("ui-template") / "seymour.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_sync(url)

    async def add_admin() -> None:
        engine = make_engine(url)
        await create_user(make_sessionmaker(engine), "admin", PASSWORD, is_admin=True)
        await engine.dispose()

    asyncio.run(add_admin())
    return path


@pytest.fixture
async def ui(ui_template_db: Path, tmp_path: Path) -> AsyncIterator[Ui]:
    path = tmp_path / "seymour.db"
    shutil.copyfile(ui_template_db, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    published = Published()
    app = create_app(Settings(api_token=TOKEN, secret_key=DEPLOYMENT_KEY), sessions=sessions, bus=published)
    async with AsyncTestClient(app=app) as client:
        yield Ui(client, sessions, published)
    await engine.dispose()


def demo_form(url: str = "https://api.example.com/api/cards", **overrides: Any) -> list[tuple[str, str]]:
    """The demo check from the test-loop issue, as the browser posts the check form."""
    fields: list[tuple[str, str]] = [
        ("name", overrides.get("name", "seymour-demo")),
        ("method", "POST"),
        ("url", url),
        ("header_row", "h1"),
        ("header-h1-name", "Content-Type"),
        ("header-h1-value", "application/json"),
        ("header_row", "h2"),
        ("header-h2-name", "Authorization"),
        ("header-h2-value", "Bearer s3cret"),
        ("body_mode", "json"),
        ("body", overrides.get("body", '{"title": "demo", "listId": 1}')),
    ]
    assertions = [
        ("response_time", "", "less_than", "500"),
        ("status_code", "", "equals", "201"),
        ("json_body", overrides.get("path", "$.title"), "equals", "demo"),
        ("json_body", "$.completed", "equals", "false"),
        ("json_body", "$.dueDate", "is_null", ""),
        ("json_body", "$.id", "exists", ""),
        ("header", "connection", "equals", "close"),
    ]
    for index, (source, prop, comparison, target) in enumerate(assertions):
        key = f"a{index}"
        fields += [
            ("assertion_row", key),
            (f"assertion-{key}-source", source),
            (f"assertion-{key}-property", prop),
            (f"assertion-{key}-comparison", comparison),
            (f"assertion-{key}-target", target),
        ]
    fields += [("regions", region) for region in ("us-east-1", "eu-north-1", "ca-central-1")]
    fields += [
        ("interval", "60"),
        ("interval_custom", ""),
        ("timeout", "10"),
        ("channel_row", "c1"),
        ("channel-c1-channel", "webhook"),
        ("channel-c1-destination", "https://hooks.example.com/x/very-secret"),
        ("channel-c1-secret", "sign-me"),
        ("channel-c1-on", "failure"),
        ("channel-c1-on", "recovery"),
        ("enabled", "on"),
    ]
    return fields


def run_row(
    check_id: Any,
    region: str,
    completed_at: Any,
    *,
    status: str = "passed",
    ms: float = 100.0,
    status_code: int | None = 201,
    assertions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``runs`` row as the results service stores it."""
    import uuid

    outcomes = assertions or []
    return {
        "run_id": uuid.uuid4(),
        "check_id": check_id,
        "region": region,
        "slot": completed_at,
        "trigger": "scheduled",
        "status": status,
        "started_at": completed_at,
        "completed_at": completed_at,
        "total_ms": ms if status != "missed" else None,
        "status_code": status_code if status not in ("error", "missed") else None,
        "error_class": {"failed": "assertion", "error": "connect", "missed": "expired"}.get(status),
        "error_message": "connection refused" if status == "error" else None,
        "assertions_passed": sum(1 for item in outcomes if item["passed"]),
        "assertions_total": len(outcomes),
        "degraded": False,
        "timings": {
            "dns_ms": 1.0,
            "connect_ms": 2.0,
            "tls_ms": None,
            "ttfb_ms": ms - 5,
            "download_ms": 2.0,
            "total_ms": ms,
        },
        "response": {
            "status_code": status_code,
            "headers": {"content-type": "application/json"},
            "body": '{"title": "other", "id": 7}',
            "truncated": False,
            "size": 27,
        }
        if status_code and status not in ("error", "missed")
        else None,
        "assertions": outcomes,
        "request": {
            "method": "POST",
            "url": "https://api.example.com/api/cards",
            "headers": {"Authorization": "********"},
            "body": {"title": "demo"},
        },
        "runner_id": f"runner-{region}",
    }


async def store_runs(sessions: Any, rows: list[dict[str, Any]]) -> None:
    """Write runs (and their rollups) the way the results service does."""
    from services.results.store import write_runs

    async with sessions() as session, session.begin():
        await write_runs(session, rows)


class _FormFields(HTMLParser):
    """What a browser would submit from the form posting to ``action`` (unchecked boxes left out)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = attr.get("action") == self.action
        if not self.inside:
            return
        name = attr.get("name")
        if tag == "input" and name:
            kind = attr.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attr:
                    self.fields.append((name, attr.get("value") or "on"))
            elif kind not in ("submit", "button"):
                self.fields.append((name, attr.get("value", "")))
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((attr.get("value", ""), "selected" in attr))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [
                value for value, _ in self._options[:1]
            ]
            self.fields += [(self._select, value) for value in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def form_fields(page: str, action: str) -> list[tuple[str, str]]:
    """The fields a browser would post from the form with ``action`` on ``page``, as shown."""
    parser = _FormFields(action)
    parser.feed(page)
    return [(name, value) for name, value in parser.fields if name != "_csrf"]
