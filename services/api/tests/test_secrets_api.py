"""Masked secrets: shown masked wherever a check is read, kept on update only while their destination is
the same — a secret never follows an edit to another host."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contracts.v1.messages import CheckChanged
from services.common.redaction import MASK
from tests.support.servers import demo_check

from .conftest import Api, opened


def _secret_check() -> dict[str, Any]:
    check = demo_check(
        "https://ops:hunter2-pass@api.example.com:8443/cards?api_key=k-123&page=2",
        "https://hooks.example.com/x/very-secret",
        interval=60,
    )
    check["request"]["headers"]["Authorization"] = "Bearer s3cret"
    check["request"]["headers"]["X-Auth-Key"] = "auth-key-value"
    check["request"]["headers"]["X-Tenant"] = "tenant-secret-by-flag"
    check["request"]["secret_headers"] = ["x-tenant"]
    check["request"]["body"] = {"user": "ops", "password": "body-pass", "nested": {"token": "nested-tok"}}
    check["alerts"][0]["secret"] = "sign-me"
    check["alerts"].append({"channel": "pagerduty", "routing_key": "pd-routing-key-1"})
    return check


SECRETS = (
    "hunter2-pass",
    "k-123",
    "s3cret",
    "auth-key-value",
    "tenant-secret-by-flag",
    "body-pass",
    "nested-tok",
    "very-secret",
    "sign-me",
    "pd-routing-key-1",
)


async def _create(api: Api) -> dict[str, Any]:
    created = await api.client.post("/api/v1/checks", json=_secret_check())
    assert created.status_code == 201, created.text
    return dict(created.json())


def _last_spec(api: Api) -> Any:
    changes = [m for m in api.published.items if isinstance(m, CheckChanged)]
    return opened(changes[-1].spec)


async def test_a_check_is_shown_with_every_secret_masked(api: Api) -> None:
    check = await _create(api)
    shown = (await api.client.get(f"/api/v1/checks/{check['id']}")).text
    listed = (await api.client.get("/api/v1/checks")).text
    for text in (shown, listed):
        for secret in SECRETS:
            assert secret not in text
    assert check["request"]["url"] == f"https://ops:{MASK}@api.example.com:8443/cards?api_key={MASK}&page=2"
    assert check["request"]["body"]["password"] == MASK
    assert check["request"]["body"]["nested"]["token"] == MASK
    assert check["request"]["headers"]["X-Auth-Key"] == MASK


def _edit(check: dict[str, Any], change: str) -> dict[str, Any]:
    edited = copy.deepcopy(check)
    request = edited["request"]
    if change == "path":
        request["url"] = request["url"].replace("/cards", "/cards/v2")
    elif change == "host":
        request["url"] = request["url"].replace("api.example.com", "attacker.example.net")
    elif change == "port":
        request["url"] = request["url"].replace(":8443", ":9443")
    elif change == "scheme":
        request["url"] = request["url"].replace("https://", "http://")
    elif change == "webhook-url":
        edited["alerts"][0]["url"] = "https://attacker.example.net/hook"
    elif change == "pagerduty-url":
        edited["alerts"][1]["url"] = "https://attacker.example.net/enqueue"
    elif change == "channel-kind":
        edited["alerts"][0] = {**edited["alerts"][0], "channel": "slack"}
        edited["alerts"][0].pop("secret")
    return edited


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ("host", "request.headers.Authorization"),
        ("port", "request.headers.Authorization"),
        ("scheme", "request.body"),
        ("webhook-url", "alerts.0.secret"),
        ("pagerduty-url", "alerts.1.routing_key"),
        ("channel-kind", "alerts.0.url"),
    ],
    ids=["new-host", "new-port", "new-scheme", "new-webhook-url", "new-pagerduty-url", "new-channel-kind"],
)
async def test_a_masked_secret_is_not_sent_to_a_new_destination(api: Api, change: str, refused: str) -> None:
    check = await _create(api)
    before = len(api.published.items)
    response = await api.client.put(f"/api/v1/checks/{check['id']}", json=_edit(check, change))
    assert response.status_code == 422, response.text
    assert refused in [error["field"] for error in response.json()["errors"]]
    assert len(api.published.items) == before
    stored = _last_spec(api)
    assert stored.request.headers["Authorization"] == "Bearer s3cret"
    assert "api.example.com" in stored.request.url


async def test_a_masked_secret_is_kept_when_only_the_path_changes(api: Api) -> None:
    check = await _create(api)
    response = await api.client.put(f"/api/v1/checks/{check['id']}", json=_edit(check, "path"))
    assert response.status_code == 200, response.text
    stored = _last_spec(api)
    assert stored.request.url == "https://ops:hunter2-pass@api.example.com:8443/cards/v2?api_key=k-123&page=2"
    assert stored.request.headers["Authorization"] == "Bearer s3cret"
    assert stored.request.body == {"user": "ops", "password": "body-pass", "nested": {"token": "nested-tok"}}
    assert stored.alerts[0].secret == "sign-me"
    assert stored.alerts[1].routing_key == "pd-routing-key-1"


async def test_a_secret_typed_again_goes_to_the_new_host(api: Api) -> None:
    check = await _create(api)
    edited = _edit(check, "host")
    edited["request"]["url"] = "https://attacker.example.net/cards"
    edited["request"]["headers"]["Authorization"] = "Bearer for-the-new-host"
    edited["request"]["headers"]["X-Auth-Key"] = "new-key"
    edited["request"]["headers"]["X-Tenant"] = "new-tenant"
    edited["request"]["body"] = {"user": "ops"}
    response = await api.client.put(f"/api/v1/checks/{check['id']}", json=edited)
    assert response.status_code == 200, response.text
    assert _last_spec(api).request.headers["Authorization"] == "Bearer for-the-new-host"


async def test_a_masked_value_with_nothing_stored_is_refused_on_create(api: Api) -> None:
    check = _secret_check()
    check["request"]["headers"]["Authorization"] = MASK
    response = await api.client.post("/api/v1/checks", json=check)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["request.headers.Authorization"]
