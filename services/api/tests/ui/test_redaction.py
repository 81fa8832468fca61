"""One redaction wherever a check or a run is shown or exported: the checks table, the check page, its
edit form, the run page, the REST views and ``seymour export`` never show a secret."""

from __future__ import annotations

import asyncio
import io
import uuid
from contextlib import redirect_stdout
from typing import Any

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.cli import main as cli_main
from tests.support.servers import demo_check

from .conftest import TOKEN, Ui, opened, run_row, store_runs

SECRETS = ("hunter2-pass", "k-123", "s3cret", "auth-key-value", "tenant-flagged", "body-pass", "very-secret")


def _check() -> dict[str, Any]:
    check = demo_check(
        "https://ops:hunter2-pass@api.example.com/cards?api_key=k-123&page=2",
        "https://hooks.example.com/x/very-secret",
        interval=60,
    )
    check["request"]["headers"].update(
        {"Authorization": "Bearer s3cret", "X-Auth-Key": "auth-key-value", "X-Tenant": "tenant-flagged"}
    )
    check["request"]["secret_headers"] = ["X-Tenant"]
    check["request"]["body"] = {"user": "ops", "password": "body-pass"}
    return check


async def _create(ui: Ui) -> uuid.UUID:
    response = await ui.client.post(
        "/api/v1/checks", json=_check(), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} shown on {where}"


async def test_pages_show_no_secret_of_a_check_or_its_runs(ui: Ui) -> None:
    check_id = await _create(ui)
    run = run_row(check_id, "us-east-1", utcnow())
    # A run stored before these names were known to be secret: redacted when shown.
    run["request"] = {
        "method": "POST",
        "url": "https://ops:hunter2-pass@api.example.com/cards?api_key=k-123",
        "headers": {"X-Auth-Key": "auth-key-value"},
        "body": {"password": "body-pass"},
    }
    run["response"] = {
        "status_code": 200,
        "headers": {"set-cookie": "sid=s3cret; HttpOnly", "content-type": "application/json"},
        "body": '{"access_token": "very-secret", "ok": true}',
        "truncated": False,
        "size": 40,
    }
    await store_runs(ui.sessions, [run])
    await ui.sign_in()
    for path in ("/", f"/checks/{check_id}", f"/checks/{check_id}/edit", f"/runs/{run['run_id']}"):
        page = await ui.client.get(path)
        assert page.status_code == 200, path
        _assert_clean(page.text, path)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for path in (
        f"/api/v1/checks/{check_id}",
        f"/api/v1/runs/{run['run_id']}",
        f"/api/v1/checks/{check_id}/runs",
    ):
        _assert_clean((await ui.client.get(path, headers=headers)).text, path)


async def test_the_edit_form_saved_unchanged_keeps_every_secret(ui: Ui) -> None:
    from .conftest import form_fields

    check_id = await _create(ui)
    await ui.sign_in()
    page = await ui.client.get(f"/checks/{check_id}/edit")
    saved = await ui.post_form(f"/checks/{check_id}", form_fields(page.text, f"/checks/{check_id}"))
    assert saved.status_code in (200, 303), saved.text
    stored = CheckSpec.model_validate(opened(ui.published.items[-1].spec))
    assert stored.request.url == "https://ops:hunter2-pass@api.example.com/cards?api_key=k-123&page=2"
    assert stored.request.headers["X-Tenant"] == "tenant-flagged"
    assert stored.request.body == {"user": "ops", "password": "body-pass"}


async def test_export_shows_no_secret(ui: Ui, monkeypatch: Any) -> None:
    await _create(ui)
    listed = await ui.client.get("/api/v1/checks", headers={"Authorization": f"Bearer {TOKEN}"})
    items = list(listed.json()["items"])

    async def what_the_api_answers(client: Any, tag: Any) -> list[dict[str, Any]]:
        return items

    monkeypatch.setattr("services.cli.checks._all_checks", what_the_api_answers)
    out = io.StringIO()
    with redirect_stdout(out):
        assert await asyncio.to_thread(cli_main, ["export", "--token", TOKEN]) == 0
    assert "api.example.com" in out.getvalue()
    _assert_clean(out.getvalue(), "seymour export")
