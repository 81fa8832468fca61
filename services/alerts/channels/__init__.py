"""The channel registry: one provider per ``channel`` kind of the check spec; adding one is one line."""

from __future__ import annotations

from typing import Final

from services.alerts.channels.base import Provider
from services.alerts.channels.discord import DiscordProvider
from services.alerts.channels.email import EmailProvider
from services.alerts.channels.pagerduty import PagerDutyProvider
from services.alerts.channels.slack import SlackProvider
from services.alerts.channels.teams import TeamsProvider
from services.alerts.channels.webhook import WebhookProvider

PROVIDERS: Final[dict[str, Provider]] = {
    "slack": SlackProvider(),
    "discord": DiscordProvider(),
    "email": EmailProvider(),
    "webhook": WebhookProvider(),
    "pagerduty": PagerDutyProvider(),
    "teams": TeamsProvider(),
}

__all__ = ["PROVIDERS", "Provider"]
