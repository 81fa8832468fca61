"""Login, sessions and CSRF: every page needs a session, every change needs the session's token."""

from __future__ import annotations

import re
import uuid

import pytest

from services.api.accounts import authenticate, list_users
from services.api.ui.bootstrap import ensure_admin
from services.common.settings import Settings

from .conftest import PASSWORD, Ui

PAGES = [
    "/",
    "/partials/checks",
    "/checks/new",
    f"/checks/{uuid.uuid4()}",
    f"/checks/{uuid.uuid4()}/edit",
    f"/checks/{uuid.uuid4()}/runs",
    f"/checks/{uuid.uuid4()}/chart.json",
    f"/checks/{uuid.uuid4()}/partials/latest",
    f"/runs/{uuid.uuid4()}",
    "/checks/form/assertion-row",
    "/checks/form/header-row",
    "/checks/form/channel-row",
    "/checks/form/maintenance-row",
    "/settings",
]
ACTIONS = [
    "/checks",
    f"/checks/{uuid.uuid4()}",
    f"/checks/{uuid.uuid4()}/run",
    f"/checks/{uuid.uuid4()}/pause",
    f"/checks/{uuid.uuid4()}/resume",
    f"/checks/{uuid.uuid4()}/delete",
    "/settings/users",
    f"/settings/users/{uuid.uuid4()}/delete",
    f"/settings/users/{uuid.uuid4()}/password",
    "/settings/tokens",
    f"/settings/tokens/{uuid.uuid4()}/revoke",
    f"/checks/{uuid.uuid4()}/alerts/0/test",
    "/settings/alerts",
    "/logout",
]


@pytest.mark.parametrize(
    "path", PAGES, ids=[p.split("/")[1] + ":" + p.rsplit("/", 1)[-1][:12] for p in PAGES]
)
async def test_pages_redirect_to_login_without_a_session(ui: Ui, path: str) -> None:
    response = await ui.client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


async def test_htmx_requests_without_a_session_get_a_full_page_redirect(ui: Ui) -> None:
    response = await ui.client.get("/partials/checks", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login"


@pytest.mark.parametrize("path", ACTIONS, ids=[p.split("/")[-1][:12] or "root" for p in ACTIONS])
async def test_actions_without_a_session_change_nothing(ui: Ui, path: str) -> None:
    response = await ui.client.post(path, data={"name": "x"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize("path", ACTIONS[:-1], ids=[p.split("/")[-1][:12] or "root" for p in ACTIONS[:-1]])
async def test_actions_without_the_csrf_token_are_refused(ui: Ui, path: str) -> None:
    await ui.sign_in()
    response = await ui.client.post(path, data={"name": "x", "_csrf": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert "Reload the page" in response.text


async def test_the_csrf_header_from_htmx_is_accepted(ui: Ui) -> None:
    await ui.sign_in()
    response = await ui.client.post(
        "/settings/tokens", data={"name": "from htmx"}, headers={"X-CSRF-Token": ui.csrf}
    )
    assert response.status_code == 200
    assert "Copy this token now" in response.text


@pytest.mark.parametrize(
    "path", ["/login", "/healthz", "/static/seymour.css", "/static/vendor/htmx-2.0.11.min.js"]
)
async def test_public_paths(ui: Ui, path: str) -> None:
    assert (await ui.client.get(path)).status_code == 200


async def test_login_with_a_wrong_password_says_so_and_keeps_the_username(ui: Ui) -> None:
    page = await ui.client.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert token
    response = await ui.client.post(
        "/login",
        data={"username": "admin", "password": "nope", "_csrf": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert 'value="admin"' in response.text
    assert "seymour_session" not in response.headers.get("set-cookie", "")


async def test_login_without_the_form_token_is_refused(ui: Ui) -> None:
    response = await ui.client.post(
        "/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403


async def test_session_cookie_is_httponly_and_samesite(ui: Ui) -> None:
    page = await ui.client.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert token
    response = await ui.client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "_csrf": token.group(1), "next": "/settings"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/settings"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("seymour_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("Lax", "lax")


async def test_login_never_redirects_off_site(ui: Ui) -> None:
    page = await ui.client.get("/login?next=//evil.example.com/")
    assert 'name="next" value="/"' in page.text


async def test_logout_ends_the_session(ui: Ui) -> None:
    await ui.login()
    await ui.post_form("/logout", {}, follow_redirects=False)
    response = await ui.client.get("/", follow_redirects=False)
    assert response.status_code == 303


async def test_ensure_admin_from_the_environment_then_never_again(ui: Ui) -> None:
    settings = Settings(admin_username="ops", admin_password="from-the-env-123")
    assert await ensure_admin(settings, ui.sessions) == [
        "Admin user 'ops' created from SEYMOUR_ADMIN_PASSWORD."
    ]
    assert await ensure_admin(settings, ui.sessions) == []
    assert await authenticate(ui.sessions, "ops", "from-the-env-123") is not None


async def test_ensure_admin_generates_a_password_only_when_nobody_can_log_in(sqlite_url: str) -> None:
    from services.common.db.engine import make_engine, make_sessionmaker

    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    lines = await ensure_admin(Settings(), sessions)
    password = lines[0].rsplit(": ", 1)[1]
    assert await authenticate(sessions, "admin", password) is not None
    assert await ensure_admin(Settings(), sessions) == []
    assert [row.username for row in await list_users(sessions)] == ["admin"]
    await engine.dispose()
