"""Roles and token scopes on every route: the app's own route table is walked as a viewer, a run-only
token and an editor, and nothing they may not do gets through (checked in the database, not only by
status code)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from services.api.accounts import create_user, load_session, open_session
from services.api.app import create_app
from services.api.auth import create_token
from services.api.permissions import grants, required
from services.api.tests.conftest import Published
from services.api.ui.security import CSRF_HEADER, SESSION_COOKIE
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import ApiToken, Check, Setting, User
from services.common.settings import Settings
from tests.support.servers import demo_check

ADMIN_TOKEN = "permissions-admin-token"
PASSWORD = "long-enough-password"
#: Routes any logged-in person may use whatever their role (they act on their own session only).
OWN_SESSION = {"/logout", "/login"}


@dataclass
class World:
    app: Litestar
    client: AsyncTestClient[Any]
    sessions: Any
    published: Published
    check_id: uuid.UUID
    users: dict[str, uuid.UUID]
    tokens: dict[str, str]
    token_ids: dict[str, uuid.UUID]


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    published = Published()
    app = create_app(Settings(api_token=ADMIN_TOKEN), sessions=sessions, bus=published)
    users: dict[str, uuid.UUID] = {}
    tokens: dict[str, str] = {}
    token_ids: dict[str, uuid.UUID] = {}
    for role in ("admin", "editor", "viewer"):
        row = await create_user(sessions, role, PASSWORD, role=role)
        users[role] = row.id
        token_row, tokens[role] = await create_token(sessions, f"{role}'s", row.id)
        token_ids[role] = token_row.id
    run_row, tokens["run"] = await create_token(sessions, "ci", users["editor"], scope="run")
    token_ids["run"] = run_row.id
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        created = await client.post(
            "/api/v1/checks", json=demo_check("http://127.0.0.1:9/x", "http://127.0.0.1:9/hook", interval=60)
        )
        assert created.status_code == 201, created.text
        client.headers.pop("Authorization")
        published.items.clear()
        yield World(
            app, client, sessions, published, uuid.UUID(created.json()["id"]), users, tokens, token_ids
        )
    await engine.dispose()


def routes(app: Litestar) -> Iterator[tuple[str, str, Any]]:
    """Every (method, path format, handler) the app serves, from its own route table."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method == "OPTIONS" or route.path.startswith(("/static", "/schema")):
                continue
            yield method, route.path, handler


def concrete(path: str, world: World, app: Litestar) -> str:
    """``path`` with each parameter filled with something that exists (the check, a token, a user)."""
    route = next(r for r in app.routes if r.path == path)
    values: dict[str, Any] = {}
    for name, definition in route.path_parameters.items():
        if name == "token_id":
            values[name] = world.token_ids["admin"]
        elif name == "user_id":
            values[name] = world.users["admin"]
        elif definition.type is uuid.UUID:
            values[name] = world.check_id
        elif definition.type is int:
            values[name] = 0
        else:
            values[name] = "x"
    return route.path_format.format(**values)


async def snapshot(sessions: Any) -> dict[str, Any]:
    """What a write would change: checks, users, tokens, settings."""
    async with sessions() as session:
        checks = (await session.execute(select(Check.id, Check.spec, Check.enabled, Check.revision))).all()
        users = (await session.execute(select(User.id, User.role, User.password_hash))).all()
        tokens = (await session.execute(select(ApiToken.id, ApiToken.revoked_at))).all()
        settings = (await session.execute(select(Setting.key, Setting.value))).all()
    return {
        "checks": sorted(map(tuple, checks), key=str),
        "users": sorted(map(tuple, users), key=str),
        "tokens": sorted(map(tuple, tokens), key=str),
        "settings": sorted(map(tuple, settings), key=str),
    }


async def as_user(world: World, role: str) -> None:
    """Make the client ``role``: its API token and a browser session with its CSRF token."""
    world.client.headers["Authorization"] = f"Bearer {world.tokens[role]}"
    async with world.sessions() as session:
        user = await session.get(User, world.users[role])
    session_id = await open_session(world.sessions, user)
    world.client.cookies.set(SESSION_COOKIE, session_id)
    loaded = await load_session(world.sessions, session_id)
    assert loaded is not None
    world.client.headers[CSRF_HEADER] = loaded.csrf_token


async def test_a_viewer_can_write_nothing_on_any_route(world: World) -> None:
    await as_user(world, "viewer")
    before = await snapshot(world.sessions)
    refused = []
    for method, path, handler in routes(world.app):
        if path in OWN_SESSION:
            continue
        need = required(handler, method)
        if need in grants("viewer"):
            continue
        target = concrete(path, world, world.app)
        response = await world.client.request(method, target, json={}, follow_redirects=False)
        assert response.status_code == 403, f"{method} {target} as a viewer: {response.status_code}"
        refused.append(f"{method} {path}")
    assert sum(1 for item in refused if not item.startswith("GET")) >= 15, refused
    assert await snapshot(world.sessions) == before
    assert world.published.items == []


async def test_a_viewer_reads_everything_it_is_allowed_to(world: World) -> None:
    await as_user(world, "viewer")
    for method, path, handler in routes(world.app):
        if method != "GET" or required(handler, method) not in grants("viewer"):
            continue
        target = concrete(path, world, world.app)
        response = await world.client.get(target, follow_redirects=False)
        assert response.status_code < 400 or response.status_code == 404, f"GET {target}: {response.text}"


@pytest.mark.parametrize(
    ("role", "scope"),
    [("editor", "run"), ("editor", "full"), ("viewer", "full")],
    ids=["run-only-token", "editor", "viewer"],
)
async def test_every_api_route_answers_by_role_and_scope(world: World, role: str, scope: str) -> None:
    token = world.tokens["run" if scope == "run" else role]
    world.client.headers["Authorization"] = f"Bearer {token}"
    allowed = grants(role, scope)
    for method, path, handler in routes(world.app):
        if not path.startswith(("/api/", "/metrics")) or method == "DELETE":
            continue
        need = required(handler, method)
        target = concrete(path, world, world.app)
        response = await world.client.request(method, target, json={}, follow_redirects=False)
        if need in allowed:
            assert response.status_code != 403, f"{method} {target} as {role}/{scope}: {response.text}"
        else:
            assert response.status_code == 403, f"{method} {target} as {role}/{scope}: {response.text}"


async def test_a_run_only_token_runs_a_check_and_reads_the_result_but_changes_nothing(world: World) -> None:
    world.client.headers["Authorization"] = f"Bearer {world.tokens['run']}"
    before = await snapshot(world.sessions)
    listed = await world.client.get("/api/v1/checks")
    assert [item["id"] for item in listed.json()["items"]] == [str(world.check_id)]
    ran = await world.client.post(f"/api/v1/checks/{world.check_id}/runs")
    assert ran.status_code == 202, ran.text
    assert len(world.published.items) == 1
    runs = await world.client.get(f"/api/v1/checks/{world.check_id}/runs")
    assert runs.status_code == 200
    for method, path, body in [
        (
            "PUT",
            f"/api/v1/checks/{world.check_id}",
            demo_check("http://127.0.0.1:9/other", "http://127.0.0.1:9/hook", interval=60),
        ),
        ("DELETE", f"/api/v1/checks/{world.check_id}", None),
        ("POST", f"/api/v1/checks/{world.check_id}/pause", None),
        ("POST", "/api/v1/tokens", {"name": "escalate", "scope": "full"}),
        ("GET", "/api/v1/tokens", None),
        ("GET", "/api/v1/incidents", None),
    ]:
        response = await world.client.request(method, path, json=body)
        assert response.status_code == 403, f"{method} {path}: {response.text}"
    assert await snapshot(world.sessions) == before


async def test_an_editor_changes_checks_but_cannot_administer(world: World) -> None:
    await as_user(world, "editor")
    paused = await world.client.post(f"/api/v1/checks/{world.check_id}/pause")
    assert paused.status_code == 200
    before = await snapshot(world.sessions)
    for method, path, body in [
        ("POST", "/api/v1/users", {"username": "mallory", "password": PASSWORD, "role": "admin"}),
        ("PUT", f"/api/v1/users/{world.users['editor']}/role", {"role": "admin"}),
        ("PUT", "/api/v1/settings/alerts", {"alert_policy": {"failure_threshold": 9}}),
        ("POST", f"/settings/users/{world.users['editor']}/role", None),
        ("POST", "/settings/alerts", None),
    ]:
        response = await world.client.request(method, path, json=body)
        assert response.status_code == 403, f"{method} {path}: {response.text}"
    assert await snapshot(world.sessions) == before


async def test_tokens_are_listed_and_revoked_by_their_owner_or_an_admin(world: World) -> None:
    world.client.headers["Authorization"] = f"Bearer {world.tokens['viewer']}"
    listed = await world.client.get("/api/v1/tokens")
    assert {item["name"] for item in listed.json()["items"]} == {"viewer's"}
    others = await world.client.delete(f"/api/v1/tokens/{world.token_ids['editor']}")
    assert others.status_code == 404
    world.client.headers["Authorization"] = f"Bearer {world.tokens['editor']}"
    assert (await world.client.get("/api/v1/checks")).status_code == 200
    await as_user(world, "viewer")
    world.client.headers.pop("Authorization")
    page = await world.client.get("/settings/")
    assert "editor&#39;s" not in page.text
    assert "viewer&#39;s" in page.text
    form = await world.client.post(
        f"/settings/tokens/{world.token_ids['editor']}/revoke", follow_redirects=False
    )
    assert form.status_code == 404
    world.client.headers["Authorization"] = f"Bearer {world.tokens['editor']}"
    assert (await world.client.get("/api/v1/checks")).status_code == 200
    world.client.headers["Authorization"] = f"Bearer {world.tokens['admin']}"
    assert (await world.client.delete(f"/api/v1/tokens/{world.token_ids['editor']}")).status_code == 204
    world.client.headers["Authorization"] = f"Bearer {world.tokens['editor']}"
    assert (await world.client.get("/api/v1/checks")).status_code == 401


async def test_a_viewers_pages_offer_no_buttons_that_would_be_refused(world: World) -> None:
    await as_user(world, "viewer")
    world.client.headers.pop("Authorization")
    for path in ("/", f"/checks/{world.check_id}"):
        page = await world.client.get(path)
        assert page.status_code == 200
        for control in ('/run"', "/run?", '/edit"', 'href="/checks/new"', '/delete"', '/pause"', '/test"'):
            assert control not in page.text, (path, control)
    await as_user(world, "editor")
    page = await world.client.get(f"/checks/{world.check_id}")
    assert f'hx-post="/checks/{world.check_id}/run' in page.text
    assert '/edit"' in page.text


async def test_an_admin_makes_someone_a_viewer_and_their_token_turns_read_only(world: World) -> None:
    world.client.headers["Authorization"] = f"Bearer {world.tokens['admin']}"
    changed = await world.client.put(f"/api/v1/users/{world.users['editor']}/role", json={"role": "viewer"})
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    world.client.headers["Authorization"] = f"Bearer {world.tokens['editor']}"
    assert (await world.client.post(f"/api/v1/checks/{world.check_id}/pause")).status_code == 403
    world.client.headers["Authorization"] = f"Bearer {world.tokens['admin']}"
    last = await world.client.put(f"/api/v1/users/{world.users['admin']}/role", json={"role": "editor"})
    assert last.status_code == 409
    bad = await world.client.put(f"/api/v1/users/{world.users['admin']}/role", json={"role": "owner"})
    assert bad.status_code == 400
