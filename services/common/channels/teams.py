"""Microsoft Teams incoming webhook / workflow: an Adaptive Card with a fact set and a link to the check."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from contracts.v1.checks import TeamsChannel
from services.common.channels.base import EMOJI, AlertMessage, ChannelInfo, HttpRequest, truncate

CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
COLOUR: Final[dict[str, str]] = {
    "failure": "Attention",
    "reminder": "Warning",
    "recovery": "Good",
    "degraded": "Warning",
    "flapping": "Accent",
    "test": "Accent",
}


def card(message: AlertMessage) -> dict[str, Any]:
    """The Adaptive Card (version 1.4) for ``message``."""
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": truncate(f"{EMOJI[message.event]} {message.title}", 300),
                "weight": "Bolder",
                "size": "Medium",
                "color": COLOUR[message.event],
                "wrap": True,
            },
            {"type": "TextBlock", "text": truncate(message.summary, 2000), "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": label, "value": truncate(value, 1000)} for label, value in message.facts()
                ],
            },
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open check", "url": message.url}],
    }


def payload(message: AlertMessage) -> dict[str, Any]:
    """The webhook body: a message with one Adaptive Card attachment."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card(message)}],
    }


class TeamsProvider:
    """Microsoft Teams webhook."""

    info = ChannelInfo(
        kind="teams",
        label="Microsoft Teams",
        model=TeamsChannel,
        destination="url",
        secret_url=True,
        placeholder="https://….webhook.office.com/… (Teams workflow URL)",
    )

    def build(self, message: AlertMessage, channel: TeamsChannel, now: datetime) -> HttpRequest:
        """POST the card to the webhook / workflow URL."""
        return HttpRequest(channel.url, json.dumps(payload(message)).encode())
