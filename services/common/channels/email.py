"""Email: a multipart message (plain text + HTML) through the SMTP server from settings."""

from __future__ import annotations

import html
from datetime import datetime

from contracts.v1.checks import EmailChannel
from services.common.channels.base import COLOURS, EMOJI, AlertMessage, ChannelInfo, EmailOutgoing, truncate


def subject(message: AlertMessage) -> str:
    """One line, no line breaks (header injection is impossible by construction)."""
    line = f"[Seymour] {EMOJI[message.event]} {message.title}"
    return truncate(" ".join(line.split()), 200)


def text_body(message: AlertMessage) -> str:
    """The plain-text part."""
    lines = [message.title, "", message.summary, ""]
    lines += [f"{label}: {value}" for label, value in message.facts()]
    lines += ["", f"Open the check: {message.url}", "", "— Seymour"]
    return "\n".join(lines) + "\n"


def html_body(message: AlertMessage) -> str:
    """The HTML part (every value escaped)."""
    colour = f"#{COLOURS[message.event]:06x}"
    rows = "".join(
        f"<tr><th align='left' style='padding:2px 12px 2px 0'>{html.escape(label)}</th>"
        f"<td>{html.escape(value)}</td></tr>"
        for label, value in message.facts()
    )
    return (
        "<!doctype html><html><body style='font-family:sans-serif'>"
        f"<h2 style='color:{colour}'>{html.escape(message.title)}</h2>"
        f"<p>{html.escape(message.summary)}</p><table>{rows}</table>"
        f"<p><a href='{html.escape(message.url, quote=True)}'>Open the check</a></p>"
        "<p style='color:#888'>Seymour</p></body></html>"
    )


class EmailProvider:
    """Email through SMTP."""

    info = ChannelInfo(
        kind="email",
        label="Email",
        model=EmailChannel,
        destination="to",
        listed=True,
        placeholder="ops@example.com, oncall@example.com",
    )

    def build(self, message: AlertMessage, channel: EmailChannel, now: datetime) -> EmailOutgoing:
        """The email for ``message`` to the channel's recipients."""
        return EmailOutgoing(list(channel.to), subject(message), text_body(message), html_body(message))
