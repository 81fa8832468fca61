"""Tags: stored with a check, filtered on, counted, and used to pause or resume many checks at once."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.v1 import CheckChanged
from tests.support.servers import demo_check

from .conftest import Api


def tagged(name: str, *tags: str) -> dict[str, Any]:
    check = demo_check("http://127.0.0.1:9/api/cards", "http://127.0.0.1:9/hook", name=name, interval=60)
    check["tags"] = list(tags)
    return check


async def names(api: Api, **params: str) -> list[str]:
    response = await api.client.get("/api/v1/checks", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_filter_count_and_retag(api: Api) -> None:
    for body in (
        tagged("cart", "team:payments", "deploy-smoke"),
        tagged("login", "deploy-smoke"),
        tagged("search"),
    ):
        assert (await api.client.post("/api/v1/checks", json=body)).status_code == 201
    assert await names(api, tag="deploy-smoke") == ["cart", "login"]
    assert await names(api, tag="team:payments") == ["cart"]
    assert await names(api, tag="nobody-uses-this") == []
    assert await names(api) == ["cart", "login", "search"]
    listing = await api.client.get("/api/v1/checks", params={"tag": "deploy-smoke"})
    assert listing.json()["total"] == 2
    tags = (await api.client.get("/api/v1/tags")).json()["items"]
    assert tags == [{"tag": "deploy-smoke", "checks": 2}, {"tag": "team:payments", "checks": 1}]

    login = next(i for i in (await api.client.get("/api/v1/checks")).json()["items"] if i["name"] == "login")
    assert login["tags"] == ["deploy-smoke"]
    login["tags"] = ["team:identity"]
    assert (await api.client.put(f"/api/v1/checks/{login['id']}", json=login)).status_code == 200
    assert await names(api, tag="deploy-smoke") == ["cart"]
    assert await names(api, tag="team:identity") == ["login"]

    assert (await api.client.delete(f"/api/v1/checks/{login['id']}")).status_code == 204
    assert await names(api, tag="team:identity") == []


async def test_bulk_pause_and_resume_by_tag(api: Api) -> None:
    for body in (tagged("a", "deploy-smoke"), tagged("b", "deploy-smoke"), tagged("c", "other")):
        assert (await api.client.post("/api/v1/checks", json=body)).status_code == 201
    api.published.items.clear()

    paused = await api.client.post("/api/v1/checks/pause", params={"tag": "deploy-smoke"})
    assert paused.status_code == 200, paused.text
    assert [item["name"] for item in paused.json()["paused"]] == ["a", "b"]
    states = {i["name"]: i["enabled"] for i in (await api.client.get("/api/v1/checks")).json()["items"]}
    assert states == {"a": False, "b": False, "c": True}
    announced = [m for m in api.published.items if isinstance(m, CheckChanged)]
    assert sorted(m.spec.name for m in announced if m.spec) == ["a", "b"]
    assert all(m.spec is not None and not m.spec.enabled for m in announced)

    again = await api.client.post("/api/v1/checks/pause", params={"tag": "deploy-smoke"})
    assert again.json()["paused"] == []

    resumed = await api.client.post("/api/v1/checks/resume", params={"tag": "deploy-smoke"})
    assert [item["name"] for item in resumed.json()["resumed"]] == ["a", "b"]
    states = {i["name"]: i["enabled"] for i in (await api.client.get("/api/v1/checks")).json()["items"]}
    assert states == {"a": True, "b": True, "c": True}


async def test_bulk_action_without_a_tag_is_422(api: Api) -> None:
    response = await api.client.post("/api/v1/checks/pause")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tag"


BAD_TAGS = [
    (["has space"], "tags"),
    (["a/b"], "tags"),
    (["-leading-dash"], "tags"),
    (["x" * 65], "tags"),
    (["dup", "dup"], "tags"),
    ([f"t{i}" for i in range(21)], "tags"),
]


@pytest.mark.parametrize(
    ("tags", "field"), BAD_TAGS, ids=["space", "slash", "leading-dash", "too-long", "repeat", "too-many"]
)
async def test_bad_tags_are_422_naming_the_field(api: Api, tags: list[str], field: str) -> None:
    response = await api.client.post("/api/v1/checks", json=tagged("bad", *tags))
    assert response.status_code == 422, response.text
    assert any(error["field"].startswith(field) for error in response.json()["errors"])
