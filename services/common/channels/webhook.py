"""Generic JSON webhook, signed: ``X-Seymour-Signature: sha256=HMAC-SHA256(secret, body)``.

The body carries ``timestamp`` (Unix seconds, also in ``X-Seymour-Timestamp``), so the signature covers it:
a receiver verifies the signature over the raw body, then rejects timestamps older than a few minutes.
``X-Seymour-Idempotency-Key`` is the same on every retry of one notification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Final

from contracts.v1.checks import WebhookChannel
from services.common.channels.base import AlertMessage, ChannelInfo, HttpRequest

SIGNATURE_HEADER: Final = "X-Seymour-Signature"
TIMESTAMP_HEADER: Final = "X-Seymour-Timestamp"
IDEMPOTENCY_HEADER: Final = "X-Seymour-Idempotency-Key"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time)."""
    return hmac.compare_digest(sign(secret, body), header)


def payload(message: AlertMessage, now: datetime) -> dict[str, Any]:
    """The JSON body: the whole neutral message plus when it was sent."""
    return {
        "type": "seymour.alert",
        "version": 1,
        "timestamp": int(now.timestamp()),
        "sent_at": now.isoformat(),
        **message.model_dump(mode="json"),
        "facts": dict(message.facts()),
    }


class WebhookProvider:
    """Generic signed webhook."""

    info = ChannelInfo(
        kind="webhook",
        label="Webhook",
        model=WebhookChannel,
        destination="url",
        secrets=("secret",),
        secret_url=True,
        placeholder="https://hooks.example.com/…",
        form_secret="secret",
        form_secret_label="Signing secret",
        form_secret_placeholder="Signing secret (optional)",
    )

    def build(self, message: AlertMessage, channel: WebhookChannel, now: datetime) -> HttpRequest:
        """POST the JSON body with signature, timestamp and idempotency headers."""
        body = json.dumps(payload(message, now), separators=(",", ":")).encode()
        headers = {
            TIMESTAMP_HEADER: str(int(now.timestamp())),
            IDEMPOTENCY_HEADER: message.idempotency_key,
            "X-Seymour-Event": message.event,
        }
        if channel.secret:
            headers[SIGNATURE_HEADER] = sign(channel.secret, body)
        return HttpRequest(channel.url, body, headers)
