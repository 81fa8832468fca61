"""Real local receivers for the tests: an aiohttp server that validates each provider's documented payload
shape and limits and can be told to answer 429/500, and an aiosmtpd SMTP server (optionally STARTTLS+AUTH)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiohttp import web

# --- documented shapes and limits -------------------------------------------------------------------


def validate_slack(body: dict[str, Any]) -> list[str]:
    """Slack incoming webhook with Block Kit (api.slack.com/reference/block-kit)."""
    errors: list[str] = []
    if not isinstance(body.get("text"), str) or not body["text"]:
        errors.append("top-level text (notification fallback) is required")
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return [*errors, "blocks must be a list of 1..50"]
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
                errors.append("header text must be plain_text of 1..150 chars")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append("section needs text or fields")
            if "text" in block and not 0 < len(block["text"].get("text", "")) <= 3000:
                errors.append("section text must be 1..3000 chars")
            fields = block.get("fields", [])
            if len(fields) > 10 or any(not 0 < len(f.get("text", "")) <= 2000 for f in fields):
                errors.append("section fields: at most 10, each 1..2000 chars")
            for item in [block.get("text"), *fields]:
                if item is not None and item.get("type") not in ("mrkdwn", "plain_text"):
                    errors.append("text objects are mrkdwn or plain_text")
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 25:
                errors.append("actions need 1..25 elements")
            for element in elements:
                if element.get("type") == "button":
                    if len(element.get("text", {}).get("text", "")) > 75:
                        errors.append("button text at most 75 chars")
                    if len(element.get("url", "")) > 3000:
                        errors.append("button url at most 3000 chars")
        elif kind == "context":
            if not 0 < len(block.get("elements", [])) <= 10:
                errors.append("context needs 1..10 elements")
        else:
            errors.append(f"unexpected block type {kind!r}")
    return errors


def validate_discord(body: dict[str, Any]) -> list[str]:
    """Discord execute-webhook with embeds (discord.com/developers/docs: embed object limits)."""
    errors: list[str] = []
    embeds = body.get("embeds")
    if len(body.get("content") or "") > 2000:
        errors.append("content at most 2000 chars")
    if not isinstance(embeds, list) or not 0 < len(embeds) <= 10:
        return [*errors, "embeds must be 1..10"]
    for embed in embeds:
        title = embed.get("title", "")
        description = embed.get("description", "")
        fields = embed.get("fields", [])
        footer = embed.get("footer", {}).get("text", "")
        if len(title) > 256:
            errors.append("embed title at most 256")
        if len(description) > 4096:
            errors.append("embed description at most 4096")
        if len(fields) > 25:
            errors.append("at most 25 fields")
        for f in fields:
            if not 0 < len(f.get("name", "")) <= 256 or not 0 < len(f.get("value", "")) <= 1024:
                errors.append("field name 1..256 and value 1..1024")
        if len(footer) > 2048:
            errors.append("footer text at most 2048")
        total = len(title) + len(description) + len(footer)
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in fields)
        if total > 6000:
            errors.append("embed total at most 6000 chars")
        colour = embed.get("color")
        if not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF:
            errors.append("color is an integer 0..0xFFFFFF")
        if "timestamp" in embed:
            try:
                dt.datetime.fromisoformat(embed["timestamp"])
            except ValueError:
                errors.append("timestamp must be ISO8601")
    return errors


def validate_teams(body: dict[str, Any]) -> list[str]:
    """Teams workflow / incoming webhook with one Adaptive Card attachment."""
    errors: list[str] = []
    if body.get("type") != "message":
        errors.append("type must be 'message'")
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return [*errors, "exactly one attachment"]
    attachment = attachments[0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        errors.append("contentType must be the adaptive card type")
    card = attachment.get("content", {})
    if card.get("type") != "AdaptiveCard" or card.get("version") not in ("1.2", "1.3", "1.4", "1.5"):
        errors.append("content must be an AdaptiveCard version 1.2..1.5")
    if not card.get("body"):
        errors.append("card body must not be empty")
    for element in card.get("body", []):
        if element.get("type") not in ("TextBlock", "FactSet", "ColumnSet", "Container"):
            errors.append(f"unexpected element {element.get('type')!r}")
        if element.get("type") == "FactSet":
            for fact in element.get("facts", []):
                if not isinstance(fact.get("title"), str) or not isinstance(fact.get("value"), str):
                    errors.append("facts have string title and value")
    for action in card.get("actions", []):
        if action.get("type") == "Action.OpenUrl" and not str(action.get("url", "")).startswith("http"):
            errors.append("Action.OpenUrl needs an http(s) url")
    if len(json.dumps(body)) > 28_000:
        errors.append("payload larger than 28 KB")
    return errors


def validate_pagerduty(body: dict[str, Any]) -> list[str]:
    """PagerDuty Events API v2 (developer.pagerduty.com/docs/events-api-v2/trigger-events)."""
    errors: list[str] = []
    if not body.get("routing_key"):
        errors.append("routing_key is required")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("event_action must be trigger/acknowledge/resolve")
    dedup = body.get("dedup_key")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("dedup_key is required to acknowledge or resolve")
    if dedup is not None and not 0 < len(dedup) <= 255:
        errors.append("dedup_key at most 255 chars")
    if action == "trigger":
        payload = body.get("payload") or {}
        if not 0 < len(payload.get("summary", "")) <= 1024:
            errors.append("payload.summary is required, at most 1024 chars")
        if not payload.get("source"):
            errors.append("payload.source is required")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("payload.severity must be critical/error/warning/info")
        for link in body.get("links", []):
            if not link.get("href"):
                errors.append("links need href")
    return errors


def validate_webhook(body: dict[str, Any], headers: Any, raw: bytes, secret: str | None) -> list[str]:
    """Seymour's own webhook contract: signature over the raw body, fresh timestamp, idempotency key."""
    errors: list[str] = []
    for key in ("type", "event", "check_id", "check_name", "state", "url", "timestamp", "idempotency_key"):
        if key not in body:
            errors.append(f"{key} is required")
    if secret is not None:
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Seymour-Signature", "")):
            errors.append("bad signature")
    if abs(time.time() - float(body.get("timestamp", 0))) > 300:
        errors.append("stale timestamp (replay)")
    if headers.get("X-Seymour-Timestamp") != str(body.get("timestamp")):
        errors.append("timestamp header and body disagree")
    if headers.get("X-Seymour-Idempotency-Key") != body.get("idempotency_key"):
        errors.append("idempotency header and body disagree")
    return errors


# --- the HTTP receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    """One accepted request."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """A local aiohttp server with one path per provider; answers can be scripted per path."""

    webhook_secret: str | None = "s3cret"
    accepted: list[Received] = field(default_factory=list)
    invalid: list[tuple[str, list[str]]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=lambda: defaultdict(list))
    always: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    def on(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        """Answer the next requests on ``path`` with these (status, headers), then normally."""
        self.script[path].extend(answers)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """Accepted bodies on ``path``."""
        return [r.body for r in self.accepted if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.hits[path] += 1
        raw = await request.read()
        if path in self.always:
            status, headers = self.always[path]
            return web.Response(status=status, headers=headers, text="scripted")
        if self.script[path]:
            status, headers = self.script[path].pop(0)
            return web.Response(status=status, headers=headers, text="scripted")
        try:
            body = json.loads(raw)
        except ValueError:
            self.invalid.append((path, ["not JSON"]))
            return web.Response(status=400, text="not json")
        validators = {
            "/slack": lambda: validate_slack(body),
            "/discord": lambda: validate_discord(body),
            "/teams": lambda: validate_teams(body),
            "/pagerduty": lambda: validate_pagerduty(body),
            "/webhook": lambda: validate_webhook(body, request.headers, raw, self.webhook_secret),
        }
        errors = validators[path]() if path in validators else [f"unknown path {path}"]
        if request.headers.get("Content-Type") != "application/json":
            errors.append("Content-Type must be application/json")
        if errors:
            self.invalid.append((path, errors))
            return web.json_response({"errors": errors}, status=400)
        self.accepted.append(Received(path, body, dict(request.headers)))
        if path == "/pagerduty":
            return web.json_response({"status": "success", "dedup_key": body.get("dedup_key")}, status=202)
        if path == "/discord":
            return web.Response(status=204)
        return web.Response(text="ok")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# --- SMTP -------------------------------------------------------------------------------------------


@dataclass
class MailBox:
    """An aiosmtpd handler that keeps every message it receives."""

    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
