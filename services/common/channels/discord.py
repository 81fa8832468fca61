"""Discord webhook: one embed with the event's colour, the facts as fields and a link to the check."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from contracts.v1.checks import DiscordChannel
from services.common.channels.base import COLOURS, EMOJI, AlertMessage, ChannelInfo, HttpRequest, truncate

TITLE_MAX: Final = 256
DESCRIPTION_MAX: Final = 4096
FIELD_NAME_MAX: Final = 256
FIELD_VALUE_MAX: Final = 1024
FIELDS_MAX: Final = 25
FOOTER_MAX: Final = 2048
EMBED_TOTAL_MAX: Final = 6000


def payload(message: AlertMessage) -> dict[str, Any]:
    """The webhook body for ``message``; every part within Discord's embed limits."""
    title = truncate(f"{EMOJI[message.event]} {message.title}", TITLE_MAX)
    footer = "Seymour"
    fields: list[dict[str, Any]] = [
        {
            "name": truncate(label, FIELD_NAME_MAX),
            "value": truncate(value or "—", FIELD_VALUE_MAX),
            "inline": label in ("Check", "State"),
        }
        for label, value in message.facts()[:FIELDS_MAX]
    ]
    used = len(title) + len(footer) + sum(len(str(f["name"])) + len(str(f["value"])) for f in fields)
    description = truncate(message.summary, min(DESCRIPTION_MAX, max(0, EMBED_TOTAL_MAX - used)))
    embed = {
        "title": title,
        "description": description,
        "url": message.url,
        "color": COLOURS[message.event],
        "fields": fields,
        "timestamp": message.at.isoformat(),
        "footer": {"text": footer},
    }
    return {"username": "Seymour", "embeds": [embed], "allowed_mentions": {"parse": []}}


class DiscordProvider:
    """Discord webhook."""

    info = ChannelInfo(
        kind="discord",
        label="Discord",
        model=DiscordChannel,
        destination="url",
        secret_url=True,
        placeholder="https://discord.com/api/webhooks/…",
    )

    def build(self, message: AlertMessage, channel: DiscordChannel, now: datetime) -> HttpRequest:
        """POST the embed to the webhook URL."""
        return HttpRequest(channel.url, json.dumps(payload(message)).encode())
