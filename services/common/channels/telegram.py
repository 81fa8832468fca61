"""Telegram: a bot posts an HTML message to a chat, group or channel (Bot API ``sendMessage``)."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any, Final

from contracts.v1.checks import TelegramChannel
from services.common.channels.base import EMOJI, AlertMessage, ChannelInfo, HttpRequest, truncate

API_URL: Final = "https://api.telegram.org"
#: Telegram refuses a message over 4096 characters (counted after entity parsing). Each part is bounded
#: so the whole stays under it without cutting through a tag: 256 + 1500 + 8 × (label + 200) + the link.
TEXT_MAX: Final = 4096
TITLE_MAX: Final = 256
SUMMARY_MAX: Final = 1500
FACTS_MAX: Final = 8
FACT_MAX: Final = 200


def text(message: AlertMessage) -> str:
    """The message in Telegram's HTML subset (``<b>`` and ``<a>`` only; everything else escaped)."""
    lines = [
        f"{EMOJI[message.event]} <b>{html.escape(truncate(message.title, TITLE_MAX), quote=False)}</b>",
        html.escape(truncate(message.summary, SUMMARY_MAX), quote=False),
        "",
    ]
    for label, value in message.facts()[:FACTS_MAX]:
        shown = html.escape(truncate(value, FACT_MAX), quote=False)
        lines.append(f"<b>{html.escape(label, quote=False)}:</b> {shown}")
    lines.append(f'<a href="{html.escape(message.url, quote=True)}">Open check</a>')
    return "\n".join(lines)


def payload(message: AlertMessage, chat_id: str) -> dict[str, Any]:
    """The ``sendMessage`` body."""
    return {
        "chat_id": chat_id,
        "text": text(message),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }


class TelegramProvider:
    """Telegram bot message."""

    info = ChannelInfo(
        kind="telegram",
        label="Telegram",
        model=TelegramChannel,
        destination="chat_id",
        secrets=("bot_token",),
        placeholder="Chat id: -1001234567890 or @channel",
        form_secret="bot_token",
        form_secret_label="Bot token",
        form_secret_placeholder="Bot token (from @BotFather)",
    )

    def build(self, message: AlertMessage, channel: TelegramChannel, now: datetime) -> HttpRequest:
        """POST the message to the bot's ``sendMessage`` method (the token is part of the URL)."""
        url = f"{channel.api_url or API_URL}/bot{channel.bot_token}/sendMessage"
        return HttpRequest(url, json.dumps(payload(message, channel.chat_id)).encode())
