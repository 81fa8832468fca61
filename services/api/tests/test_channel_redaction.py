"""Channel secrets are write-only through the api, whichever fields the channel's provider declares."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.v1 import CheckSpec
from services.api.redaction import redact_spec, restore_secrets
from services.common.redaction import MASK

CHANNELS: list[tuple[dict[str, Any], str, str]] = [
    ({"channel": "telegram", "chat_id": "-100123", "bot_token": "123456:tok"}, "bot_token", "123456:tok"),
    ({"channel": "pagerduty", "routing_key": "R0UT1NGKEY"}, "routing_key", "R0UT1NGKEY"),
    ({"channel": "webhook", "url": "https://h.example/hook", "secret": "s3cret"}, "secret", "s3cret"),
    ({"channel": "slack", "url": "https://hooks.slack.com/services/T/B/X"}, "url", "T/B/X"),
]


@pytest.mark.parametrize(("channel", "field", "secret"), CHANNELS, ids=[c[0]["channel"] for c in CHANNELS])
def test_a_channel_secret_is_masked_when_read_and_kept_when_written_back(
    channel: dict[str, Any], field: str, secret: str
) -> None:
    check = {"name": "shop", "request": {"url": "http://127.0.0.1:9/"}, "regions": ["eu-west-1"]}
    stored = CheckSpec.model_validate({**check, "alerts": [channel]}).model_dump(mode="json")
    shown = redact_spec(stored)
    assert secret not in str(shown)
    assert MASK in shown["alerts"][0][field]
    assert restore_secrets(shown, stored)["alerts"][0][field] == stored["alerts"][0][field]
