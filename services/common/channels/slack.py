"""Slack incoming webhook: a Block Kit message (header, summary, fields, a button to the check)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from contracts.v1.checks import SlackChannel
from services.common.channels.base import EMOJI, AlertMessage, ChannelInfo, HttpRequest, truncate

HEADER_MAX: Final = 150
SECTION_MAX: Final = 3000
FIELD_MAX: Final = 2000
FIELDS_MAX: Final = 10


def escape(text: str) -> str:
    """Slack mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: AlertMessage) -> dict[str, Any]:
    """The Block Kit body for ``message``."""
    fields = [
        {"type": "mrkdwn", "text": truncate(f"*{escape(label)}*\n{escape(value)}", FIELD_MAX)}
        for label, value in message.facts()[:FIELDS_MAX]
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(f"{EMOJI[message.event]} {message.title}", HEADER_MAX),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(escape(message.summary), SECTION_MAX)},
        },
        {"type": "section", "fields": fields},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open check"}, "url": message.url}
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Seymour · {message.at.strftime('%Y-%m-%d %H:%M:%S UTC')}"}
            ],
        },
    ]
    return {"text": truncate(f"{message.title}: {message.summary}", SECTION_MAX), "blocks": blocks}


class SlackProvider:
    """Slack incoming webhook."""

    info = ChannelInfo(
        kind="slack",
        label="Slack",
        model=SlackChannel,
        destination="url",
        secret_url=True,
        placeholder="https://hooks.slack.com/services/…",
    )

    def build(self, message: AlertMessage, channel: SlackChannel, now: datetime) -> HttpRequest:
        """POST the Block Kit body to the webhook URL."""
        return HttpRequest(channel.url, json.dumps(payload(message)).encode())
