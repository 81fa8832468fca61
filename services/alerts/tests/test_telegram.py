"""The Telegram channel against a real local Bot API stand-in: the message a chat shows, a wrong token
refused without leaking it, and what a channel must name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import web

from contracts.v1 import CheckSpec
from services.alerts.tests.conftest import store_check
from services.common.channels.base import AlertMessage
from services.common.channels.probe import send_test_notification
from services.common.channels.telegram import TEXT_MAX, text
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings

TOKEN = "123456:ABC-secret-bot-token"


class _Visible(HTMLParser):
    """What a chat shows for Telegram's HTML subset; records tags it would reject."""

    ALLOWED = frozenset({"b", "a"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.rejected: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self.rejected.append(tag)
        if tag == "a":
            self.links += [value or "" for name, value in attrs if name == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@dataclass
class BotApi:
    """A local stand-in for ``api.telegram.org`` that checks what ``sendMessage`` requires."""

    url: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def send_message(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        body = await request.json()
        parsed = _Visible()
        parsed.feed(body.get("text", ""))
        shown = "".join(parsed.text)
        if body.get("parse_mode") != "HTML" or parsed.rejected:
            self.problems.append(f"unsupported markup: {parsed.rejected}")
        if not body.get("chat_id") or not 0 < len(shown) <= TEXT_MAX:
            self.problems.append("chat_id and 1..4096 characters of text are required")
        self.messages.append({**body, "shown": shown, "links": parsed.links})
        return web.json_response({"ok": True, "result": {"message_id": len(self.messages)}})


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApi]:
    api = BotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", api.send_message)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api.url = f"http://127.0.0.1:{port}"
    yield api
    await runner.cleanup()


def spec(api_url: str, token: str = TOKEN, name: str = "checkout <API> & co") -> dict[str, Any]:
    return {
        "name": name,
        "request": {"url": "http://127.0.0.1:9/health"},
        "regions": ["eu-west-1"],
        "alerts": [
            {"channel": "telegram", "chat_id": "-1001234567890", "bot_token": token, "api_url": api_url}
        ],
    }


async def send(sqlite_url: str, check: dict[str, Any]) -> tuple[uuid.UUID, dict[str, Any]]:
    check_id = await store_check(sqlite_url, check)
    engine = make_engine(sqlite_url)
    try:
        settings = Settings(base_url="https://seymour.example")
        result = await send_test_notification(make_sessionmaker(engine), settings, check_id, 0)
    finally:
        await engine.dispose()
    return check_id, result


async def test_a_test_notification_reaches_the_chat_as_escaped_html(sqlite_url: str, bot_api: BotApi) -> None:
    check_id, result = await send(sqlite_url, spec(bot_api.url))
    assert result["ok"] is True
    assert result["channel"] == "telegram"
    assert bot_api.problems == []
    (sent,) = bot_api.messages
    assert sent["chat_id"] == "-1001234567890"
    assert "checkout <API> & co" in sent["shown"], "the check's name reads as typed, not as markup"
    assert sent["links"] == [f"https://seymour.example/checks/{check_id}"]


def test_the_text_stays_within_telegrams_limit_however_long_the_parts() -> None:
    huge = AlertMessage(
        event="failure",
        idempotency_key="k",
        check_id=uuid.uuid4(),
        check_name="<b>" * 5000,
        state="failing",
        title="t" * 10_000,
        summary="s & " * 20_000,
        url="https://seymour.example/checks/1",
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    parsed = _Visible()
    parsed.feed(text(huge))
    assert parsed.rejected == []
    assert 0 < len("".join(parsed.text)) <= TEXT_MAX


async def test_a_wrong_token_fails_the_send_without_showing_the_token(
    sqlite_url: str, bot_api: BotApi
) -> None:
    _, result = await send(sqlite_url, spec(bot_api.url, token="999:wrong-token"))
    assert result["ok"] is False
    assert result["status"] == 401
    assert "wrong-token" not in str(result)
    assert bot_api.messages == []


@pytest.mark.parametrize(
    ("change", "field"),
    [({"chat_id": ""}, "chat_id"), ({"bot_token": ""}, "bot_token"), ({"api_url": "ftp://x"}, "api_url")],
    ids=["no-chat", "no-token", "bad-api-url"],
)
def test_an_incomplete_telegram_channel_is_refused_naming_the_field(
    change: dict[str, str], field: str
) -> None:
    check = spec("http://127.0.0.1:1")
    check["alerts"][0].update(change)
    with pytest.raises(ValueError, match=field):
        CheckSpec.model_validate(check)
