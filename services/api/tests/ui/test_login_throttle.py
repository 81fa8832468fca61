"""Password guessing backs off (429 + Retry-After) per account and per client; argon2 never runs on the
event loop; a password change needs the current password and ends what the old one opened."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from services.api.accounts import authenticate, create_user, find_user, load_session, open_session
from services.api.auth import create_token
from services.api.throttle import ADDRESS_FREE, USER_FREE, LoginThrottle
from services.api.ui.security import SESSION_COOKIE

from .conftest import PASSWORD, Ui


async def _attempt(ui: Ui, username: str, password: str) -> Any:
    page = await ui.client.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert token is not None
    return await ui.client.post(
        "/login",
        data={"username": username, "password": password, "_csrf": token.group(1), "next": "/"},
        follow_redirects=False,
    )


async def test_guessing_one_accounts_password_is_slowed_down(ui: Ui) -> None:
    for _ in range(USER_FREE - 1):
        assert (await _attempt(ui, "admin", "wrong-guess")).status_code == 401
    blocked = await _attempt(ui, "admin", "wrong-guess")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "Too many failed logins" in blocked.text
    refused = await _attempt(ui, "admin", PASSWORD)
    assert refused.status_code == 429, "while blocked even the right password is not checked"
    assert SESSION_COOKIE not in refused.cookies


async def test_guessing_many_accounts_from_one_client_is_slowed_down(ui: Ui) -> None:
    statuses = [(await _attempt(ui, f"user{n}", "wrong-guess")).status_code for n in range(ADDRESS_FREE)]
    assert statuses[:-1] == [401] * (ADDRESS_FREE - 1)
    assert statuses[-1] == 429


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(USER_FREE - 1, 0), (USER_FREE, 1), (USER_FREE + 1, 2), (USER_FREE + 3, 8), (USER_FREE + 40, 900)],
    ids=["under-allowance", "first-backoff", "doubles", "doubles-again", "capped"],
)
def test_backoff_doubles_per_failure_up_to_a_cap(failures: int, wait: int) -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    last = 0
    for index in range(failures):
        last = throttle.failed(f"10.0.0.{index}", "admin")
        now[0] += last
    assert last == wait
    assert throttle.retry_after("10.0.0.200", "admin") == 0
    now[0] -= last
    assert throttle.retry_after("10.0.0.200", "admin") == wait
    throttle.succeeded("10.0.0.200", "admin")
    assert throttle.retry_after("10.0.0.200", "admin") == 0


async def test_a_login_flood_does_not_stall_the_event_loop(ui: Ui) -> None:
    """16 logins at once cost ~1.5 s of argon2: on the loop that is 1.5 s with nothing else served."""
    stalled = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal stalled
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            stalled += max(0.0, time.perf_counter() - before - 0.005 - 0.02)

    async def hashed_login(n: int) -> bool:
        return await authenticate(ui.sessions, "admin" if n % 2 else f"nobody{n}", f"wrong-{n}") is None

    tick = asyncio.create_task(ticker())
    results = await asyncio.gather(*(hashed_login(n) for n in range(16)))
    done.set()
    await tick
    assert all(results)
    assert stalled < 1.0, f"the loop was blocked {stalled:.2f} s in all"


async def test_changing_your_password_needs_the_current_one_and_ends_what_the_old_one_opened(ui: Ui) -> None:
    await ui.sign_in()
    admin = await find_user(ui.sessions, username="admin")
    other_browser = await open_session(ui.sessions, admin)
    _, token = await create_token(ui.sessions, "made with the old password", admin.id)
    path = f"/settings/users/{admin.id}/password"
    wrong = await ui.post_form(path, {"current_password": "not-it", "password": "brand-new-pass-1"})
    assert wrong.status_code == 422
    assert "wrong password" in wrong.text
    assert await authenticate(ui.sessions, "admin", PASSWORD) is not None
    changed = await ui.post_form(
        path, {"current_password": PASSWORD, "password": "brand-new-pass-1"}, follow_redirects=False
    )
    assert changed.status_code == 303
    assert await authenticate(ui.sessions, "admin", "brand-new-pass-1") is not None
    assert await load_session(ui.sessions, other_browser) is None, "other sessions end"
    assert (await ui.client.get("/settings/")).status_code == 200, "this browser stays logged in"
    api = await ui.client.get("/api/v1/checks", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401, "tokens made by whoever knew the old password are revoked"


async def test_an_admin_resets_someone_elses_password_without_theirs(ui: Ui) -> None:
    bob = await create_user(ui.sessions, "bob", "bobs-password-1")
    _, token = await create_token(ui.sessions, "bob's", bob.id)
    await ui.sign_in()
    reset = await ui.post_form(
        f"/settings/users/{bob.id}/password", {"password": "reset-by-admin-1", "keep_tokens": "on"}
    )
    assert reset.status_code == 200
    assert await authenticate(ui.sessions, "bob", "reset-by-admin-1") is not None
    api = await ui.client.get("/api/v1/checks", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200, "kept when asked"
