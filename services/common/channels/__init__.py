"""The channel registry: one provider per ``channel`` kind of the check spec; adding one is one line."""

from __future__ import annotations

from typing import Final

from services.common.channels.base import Provider
from services.common.channels.discord import DiscordProvider
from services.common.channels.email import EmailProvider
from services.common.channels.pagerduty import PagerDutyProvider
from services.common.channels.slack import SlackProvider
from services.common.channels.teams import TeamsProvider
from services.common.channels.webhook import WebhookProvider

PROVIDERS: Final[dict[str, Provider]] = {
    "slack": SlackProvider(),
    "discord": DiscordProvider(),
    "email": EmailProvider(),
    "webhook": WebhookProvider(),
    "pagerduty": PagerDutyProvider(),
    "teams": TeamsProvider(),
}

__all__ = ["PROVIDERS", "Provider"]
