"""The channel registry: one provider per ``channel`` kind of the check spec; adding one is one line."""

from __future__ import annotations

from typing import Any, Final

from services.common.channels.base import ChannelInfo, Provider
from services.common.channels.discord import DiscordProvider
from services.common.channels.email import EmailProvider
from services.common.channels.pagerduty import PagerDutyProvider
from services.common.channels.slack import SlackProvider
from services.common.channels.teams import TeamsProvider
from services.common.channels.telegram import TelegramProvider
from services.common.channels.webhook import WebhookProvider

#: Every provider, in the order the check form offers them (the first is the form's default).
PROVIDERS: Final[dict[str, Provider[Any]]] = {
    provider.info.kind: provider
    for provider in (
        WebhookProvider(),
        SlackProvider(),
        DiscordProvider(),
        TeamsProvider(),
        EmailProvider(),
        PagerDutyProvider(),
        TelegramProvider(),
    )
}
#: What each kind declares (label, destination and secret fields), for redaction, forms and views.
CHANNELS: Final[dict[str, ChannelInfo]] = {kind: provider.info for kind, provider in PROVIDERS.items()}

__all__ = ["CHANNELS", "PROVIDERS", "ChannelInfo", "Provider"]
