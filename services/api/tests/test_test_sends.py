""" "Send test" is rate-limited per user and channel: it must not become a request cannon."""

from __future__ import annotations

import uuid

from services.common.channels.probe import PER_CHANNEL_S, PER_USER, ProbeLimiter

from .conftest import Api
from .test_alerts_api import _Hook, hook  # noqa: F401  (fixture)


async def test_second_test_send_to_a_channel_is_429(api: Api, hook: str) -> None:  # noqa: F811
    spec = {
        "name": "n",
        "request": {"url": "http://127.0.0.1:9/"},
        "regions": ["local"],
        "alerts": [{"channel": "webhook", "url": hook}],
    }
    check = (await api.client.post("/api/v1/checks", json=spec)).json()
    first = await api.client.post(f"/api/v1/checks/{check['id']}/alerts/0/test")
    assert first.status_code == 200, first.text
    flood = [await api.client.post(f"/api/v1/checks/{check['id']}/alerts/0/test") for _ in range(20)]
    assert {response.status_code for response in flood} == {429}
    assert 0 < int(flood[0].headers["Retry-After"]) <= PER_CHANNEL_S
    assert "too many test sends" in flood[0].json()["detail"]
    assert len(_Hook.received) == 1


def test_limits_per_channel_and_per_user() -> None:
    limiter = ProbeLimiter()
    checks = [uuid.uuid4() for _ in range(PER_USER + 1)]
    assert limiter.wait_for("alice", checks[0], 0, now=0.0) == 0
    assert limiter.wait_for("alice", checks[0], 0, now=1.0) == PER_CHANNEL_S - 1.0
    assert limiter.wait_for("bob", checks[0], 0, now=1.0) == 0, "another user has their own budget"
    assert limiter.wait_for("alice", checks[0], 1, now=1.0) == 0, "another channel is another key"
    allowed = [limiter.wait_for("alice", check, 0, now=2.0) for check in checks[1:]]
    assert allowed.count(0) == PER_USER - 2, "ten a minute in all"
    assert limiter.wait_for("alice", checks[0], 0, now=61.0) == 0, "the window slides"
