"""Alerting endpoints: incidents, test notifications to a real local receiver, global settings, metrics."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from contracts.v1 import utcnow
from services.common.db.models import Incident

from .conftest import Api


class _Hook(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def hook() -> Iterator[str]:
    """A real HTTP receiver on 127.0.0.1 in its own thread (the test client blocks this loop)."""
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()  # shutdown() only stops the loop; the listening socket stayed open
    thread.join(5)


async def test_test_notification_reaches_the_channel(api: Api, hook: str) -> None:
    spec = {
        "name": "n",
        "request": {"url": "http://127.0.0.1:9/"},
        "regions": ["local"],
        "alerts": [{"channel": "webhook", "url": hook, "secret": "s3"}],
    }
    check = (await api.client.post("/api/v1/checks", json=spec)).json()
    sent = await api.client.post(f"/api/v1/checks/{check['id']}/alerts/0/test")
    assert sent.status_code == 200, sent.text
    assert sent.json()["ok"] is True
    assert len(_Hook.received) == 1
    assert b'"event":"test"' in _Hook.received[0]
    missing = await api.client.post(f"/api/v1/checks/{check['id']}/alerts/5/test")
    assert missing.status_code == 404


async def test_incidents_are_listed_and_filtered(api: Api) -> None:
    check_id = uuid.uuid4()
    async with api.sessions() as session, session.begin():
        session.add(
            Incident(
                check_id=check_id,
                state="resolved",
                opened_at=utcnow(),
                resolved_at=utcnow(),
                failing_regions=[{"region": "eu-north-1"}],
                failing_assertions=[],
            )
        )
        session.add(
            Incident(
                check_id=check_id,
                state="open",
                opened_at=utcnow(),
                failing_regions=[{"region": "us-east-1"}],
                failing_assertions=[],
            )
        )
    both = (await api.client.get("/api/v1/incidents", params={"check_id": str(check_id)})).json()["items"]
    assert [item["state"] for item in both] == ["open", "resolved"]
    open_only = (await api.client.get("/api/v1/incidents", params={"state": "open"})).json()["items"]
    assert [item["state"] for item in open_only] == ["open"]
    one = await api.client.get(f"/api/v1/incidents/{open_only[0]['id']}")
    assert one.json()["notifications"] == []
    assert (await api.client.get(f"/api/v1/incidents/{uuid.uuid4()}")).status_code == 404


async def test_global_alert_settings_round_trip_and_422(api: Api) -> None:
    default = (await api.client.get("/api/v1/settings/alerts")).json()
    assert default["alert_policy"]["failure_threshold"] == 2
    body = {
        "alert_policy": {"failure_threshold": 3, "region_quorum": "50%"},
        "maintenance": [
            {"weekly": {"day": "sun", "start": "02:00", "end": "03:00", "tz": "Europe/Stockholm"}}
        ],
    }
    saved = await api.client.put("/api/v1/settings/alerts", json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["alert_policy"]["region_quorum"] == "50%"
    assert len(saved.json()["maintenance"]) == 1
    bad = await api.client.put(
        "/api/v1/settings/alerts",
        json={"alert_policy": {"failure_threshold": 0}, "maintenance": [{"start": "nope"}]},
    )
    assert bad.status_code == 422
    fields = [error["field"] for error in bad.json()["errors"]]
    assert "alert_policy.failure_threshold" in fields
    assert any(field.startswith("maintenance.0") for field in fields)


async def test_metrics_are_prometheus_text_and_need_a_token(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert "seymour_notifications_failed_total" in response.text
    assert "seymour_dead_letters 0" in response.text
    api.client.headers.pop("Authorization")
    assert (await api.client.get("/metrics")).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/users", {"username": "mallory", "password": "long-enough-1", "is_admin": True}),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "mallory", "password": "long-enough-1", "role": "admin"}),
        ("PUT", "/api/v1/settings/alerts", {"alert_policy": {"failure_threshold": 9}}),
    ],
    ids=["create-admin", "list-users", "create-admin-by-role", "global-settings"],
)
async def test_a_non_admin_token_cannot_administer(api: Api, method: str, path: str, body: Any) -> None:
    from services.api.accounts import create_user
    from services.api.auth import create_token

    user = await create_user(api.sessions, "viewer", "viewer-password-1", is_admin=False)
    _, token = await create_token(api.sessions, "viewer's", user.id)
    api.client.headers["Authorization"] = f"Bearer {token}"
    assert (await api.client.get("/api/v1/checks")).status_code == 200
    response = await api.client.request(method, path, json=body)
    assert response.status_code == 403, response.text
    admin = await create_user(api.sessions, "boss", "boss-password-1", is_admin=True)
    _, admin_token = await create_token(api.sessions, "boss's", admin.id)
    api.client.headers["Authorization"] = f"Bearer {admin_token}"
    assert (await api.client.request(method, path, json=body)).status_code < 400
