"""Secrets at rest: whoever reads the database (a backup, a copied SQLite file, a read-only SQL account)
finds no secret header value and no channel secret in clear, only values sealed with the deployment key."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from services.common.redaction import MASK
from services.common.secretbox import SecretBox, is_sealed
from tests.support.servers import demo_check

from .conftest import Api

#: Every secret of :func:`secret_check`, as typed.
CLEAR = (
    "Bearer header-s3cret",
    "header-s3cret",
    "tenant-by-flag",
    "step-two-key",
    "teardown-cookie",
    "hooks.example.com/x/very-secret",
    "sign-me-please",
    "T000/B000/slack-secret",
    "discord-webhook-secret",
    "pd-routing-key-1",
    "123456:telegram-bot-token",
)


def secret_check(name: str = "at-rest") -> dict[str, Any]:
    """A multi-step check with secret headers in every kind of request, and a channel of each secret kind."""
    check = demo_check("https://api.example.com/cards", "https://hooks.example.com/x/very-secret", name=name)
    request = check.pop("request")
    request["headers"] = {
        "Content-Type": "application/json",
        "Authorization": "Bearer header-s3cret",
        "X-Tenant": "tenant-by-flag",
    }
    request["secret_headers"] = ["x-tenant"]
    check["steps"] = [
        {"name": "create", "request": request, "assertions": check.pop("assertions")},
        {
            "name": "read",
            "request": {
                "url": "https://api.example.com/cards/1",
                "headers": {"X-Api-Key": "step-two-key{{ vars.suffix }}", "Accept": "application/json"},
            },
        },
    ]
    check["variables"] = {"suffix": "-v1"}
    check["teardown"] = [
        {
            "name": "clean",
            "request": {
                "method": "DELETE",
                "url": "https://api.example.com/cards/1",
                "headers": {"Cookie": "teardown-cookie"},
            },
        },
    ]
    check["alerts"][0]["secret"] = "sign-me-please"
    check["alerts"] += [
        {"channel": "slack", "url": "https://hooks.slack.com/services/T000/B000/slack-secret"},
        {"channel": "discord", "url": "https://discord.com/api/webhooks/1/discord-webhook-secret"},
        {"channel": "pagerduty", "routing_key": "pd-routing-key-1"},
        {"channel": "telegram", "chat_id": "-1001", "bot_token": "123456:telegram-bot-token"},
    ]
    return check


async def raw_specs(api: Api) -> str:
    """The ``checks`` rows as the database holds them (no model, no decoding of ours)."""
    async with api.sessions() as session:
        rows = (await session.execute(text("SELECT spec FROM checks"))).all()
    return "\n".join(str(row[0]) for row in rows)


async def test_the_database_holds_no_secret_header_or_channel_secret_in_clear(
    api: Api, sqlite_url: str
) -> None:
    """The attack: read the rows, and the file itself, looking for what was typed."""
    created = await api.client.post("/api/v1/checks", json=secret_check())
    assert created.status_code == 201, created.text
    rows = await raw_specs(api)
    path = Path(sqlite_url.split(":///", 1)[1])
    files = [found for found in (path, path.with_name(path.name + "-wal")) if found.exists()]
    database = b"".join([await asyncio.to_thread(found.read_bytes) for found in files])
    for secret in CLEAR:
        assert secret not in rows, f"{secret!r} is stored in clear"
        assert secret.encode() not in database, f"{secret!r} is in the database file"
    assert "sealed:v1:" in rows
    assert "api.example.com" in rows, "what is not secret stays readable"


async def test_what_is_sealed_opens_with_the_deployment_key_only(api: Api) -> None:
    created = await api.client.post("/api/v1/checks", json=secret_check())
    assert created.status_code == 201, created.text
    async with api.sessions() as session:
        spec = (await session.execute(text("SELECT spec FROM checks"))).scalar_one()
    spec = spec if isinstance(spec, dict) else json.loads(spec)
    sealed = [value for value in _strings(spec) if is_sealed(value)]
    assert len(sealed) >= len(CLEAR) - 1
    key = SecretBox(hashlib.sha256(b"api-test-deployment-key").digest())
    opened = {key.open(value) for value in sealed}
    for secret in CLEAR[1:]:
        assert any(secret in value for value in opened), secret


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


async def test_the_api_still_shows_them_masked_and_keeps_them_on_a_same_destination_edit(api: Api) -> None:
    created = await api.client.post("/api/v1/checks", json=secret_check())
    assert created.status_code == 201, created.text
    shown = created.json()
    for secret in CLEAR:
        assert secret not in created.text
    assert shown["steps"][0]["request"]["headers"]["Authorization"] == MASK
    assert "secrets" not in shown, "secrets made from headers are not the user's to see"
    assert shown["alerts"][1]["url"] == f"https://hooks.slack.com/{MASK}"
    again = await api.client.put(f"/api/v1/checks/{shown['id']}", json=shown)
    assert again.status_code == 200, again.text
    assert again.json() == {**shown, "revision": 2, "updated_at": again.json()["updated_at"]}
    for secret in CLEAR:
        assert secret not in await raw_specs(api)


async def test_a_header_secret_cannot_be_referenced_elsewhere(api: Api) -> None:
    """Else an editor could copy ``Authorization``'s sealed value into a header shown in clear."""
    created = await api.client.post("/api/v1/checks", json=secret_check())
    assert created.status_code == 201, created.text
    edited = created.json()
    edited["steps"][1]["request"]["headers"]["X-Echo"] = "{{ secrets.__header_1 }}"
    refused = await api.client.put(f"/api/v1/checks/{edited['id']}", json=edited)
    assert refused.status_code == 422, refused.text
    assert "__header_1" in refused.text
    shown = await api.client.get(f"/api/v1/checks/{edited['id']}")
    assert "header-s3cret" not in shown.text
