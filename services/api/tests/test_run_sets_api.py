"""Run sets: a tag-wide run now, narrowed by region, polled by id until every run is stored."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.v1 import CheckDue
from services.common.db.models import Run
from tests.support.servers import demo_check

from .conftest import Api


async def create(api: Api, name: str, tags: list[str], regions: list[str]) -> dict[str, Any]:
    check = demo_check("http://127.0.0.1:9/api/cards", "http://127.0.0.1:9/hook", name=name, interval=60)
    response = await api.client.post("/api/v1/checks", json={**check, "tags": tags, "regions": regions})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def store(api: Api, due: CheckDue, region: str, status: str, assertions: list[Any]) -> None:
    from contracts.v1 import run_id_for

    async with api.sessions() as session, session.begin():
        session.add(
            Run(
                run_id=run_id_for(due.check_id, due.slot, region, "manual"),
                check_id=due.check_id,
                region=region,
                slot=due.slot,
                trigger="manual",
                status=status,
                started_at=due.slot,
                completed_at=due.slot + timedelta(seconds=1),
                total_ms=42.0,
                status_code=503 if status == "failed" else 201,
                assertions=assertions,
                timings={"total_ms": 42.0},
            )
        )


FAILED = {"source": "status_code", "comparison": "equals", "target": 201, "observed": 503, "passed": False}


async def test_tag_run_fans_out_per_region_and_reports_as_runs_land(api: Api) -> None:
    cards = await create(api, "cards", ["deploy-smoke"], ["us-east-1", "eu-north-1"])
    login = await create(api, "login", ["deploy-smoke"], ["eu-north-1", "ca-central-1"])
    await create(api, "other", ["nightly"], ["us-east-1"])
    api.published.items.clear()

    started = await api.client.post("/api/v1/run-sets", json={"tag": "deploy-smoke"})
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["state"] == "running"
    assert [(r["check"], r["region"], r["status"]) for r in body["runs"]] == [
        ("cards", "us-east-1", "pending"),
        ("cards", "eu-north-1", "pending"),
        ("login", "eu-north-1", "pending"),
        ("login", "ca-central-1", "pending"),
    ]
    dues = {str(m.check_id): m for m in api.published.items if isinstance(m, CheckDue)}
    assert set(dues) == {cards["id"], login["id"]}
    assert dues[cards["id"]].regions == ["us-east-1", "eu-north-1"]
    assert dues[cards["id"]].trigger == "manual"

    await store(api, dues[cards["id"]], "us-east-1", "passed", [])
    await store(api, dues[cards["id"]], "eu-north-1", "failed", [FAILED])
    polled = (await api.client.get(f"/api/v1/run-sets/{body['id']}")).json()
    assert polled["state"] == "running"
    assert polled["pending"] == 2
    failed = next(r for r in polled["runs"] if r["status"] == "failed")
    assert failed["run"]["assertions"][0]["observed"] == 503

    await store(api, dues[login["id"]], "eu-north-1", "passed", [])
    await store(api, dues[login["id"]], "ca-central-1", "passed", [])
    polled = (await api.client.get(f"/api/v1/run-sets/{body['id']}")).json()
    assert (polled["state"], polled["pending"]) == ("failed", 0)


async def test_regions_narrow_the_run_and_checks_outside_them_are_skipped(api: Api) -> None:
    await create(api, "cards", ["deploy-smoke"], ["us-east-1", "eu-north-1"])
    await create(api, "login", ["deploy-smoke"], ["ca-central-1"])
    api.published.items.clear()
    started = await api.client.post(
        "/api/v1/run-sets", json={"tag": "deploy-smoke", "regions": ["eu-north-1"]}
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert [(r["check"], r["region"]) for r in body["runs"]] == [("cards", "eu-north-1")]
    assert [s["check"] for s in body["skipped"]] == ["login"]
    dues = [m for m in api.published.items if isinstance(m, CheckDue)]
    assert [due.regions for due in dues] == [["eu-north-1"]]


BAD = [
    ({}, "tag"),
    ({"tag": ""}, "tag"),
    ({"tag": "nobody-has-it"}, "tag"),
    ({"tag": "deploy-smoke", "regions": ["mars-1"]}, "regions"),
    ({"tag": "deploy-smoke", "regions": []}, "regions"),
    ({"tag": "deploy-smoke", "regions": ["ap-south-1"]}, "regions"),
    ([], "body"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    BAD,
    ids=[
        "no-tag",
        "blank-tag",
        "unknown-tag",
        "unknown-region",
        "no-regions",
        "no-check-there",
        "not-object",
    ],
)
async def test_bad_run_set_requests_are_422_naming_the_field(api: Api, body: Any, field: str) -> None:
    await create(api, "cards", ["deploy-smoke"], ["us-east-1"])
    api.published.items.clear()
    response = await api.client.post("/api/v1/run-sets", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert [m for m in api.published.items if isinstance(m, CheckDue)] == []


async def test_unknown_run_set_is_404(api: Api) -> None:
    assert (await api.client.get(f"/api/v1/run-sets/{uuid.uuid4()}")).status_code == 404


SCOPED = [
    ("POST", "/api/v1/run-sets", {"tag": "deploy-smoke"}, 202),
    ("GET", "/api/v1/checks?tag=deploy-smoke", None, 200),
    ("POST", "/api/v1/checks", "new-check", 403),
    ("POST", "/api/v1/checks/pause?tag=deploy-smoke", None, 403),
    ("GET", "/api/v1/tags", None, 403),
    ("GET", "/api/v1/status-pages", None, 403),
    ("GET", "/api/v1/incidents", None, 403),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    SCOPED,
    ids=["start-run-set", "list-tagged", "create", "pause-tag", "tags", "status-pages", "incidents"],
)
async def test_a_run_only_token_runs_and_reads_results_and_nothing_else(
    api: Api, method: str, path: str, body: Any, status: int
) -> None:
    from services.api.auth import create_token

    await create(api, "cards", ["deploy-smoke"], ["us-east-1"])
    _, token = await create_token(api.sessions, "ci", scope="run")
    headers = {"Authorization": f"Bearer {token}"}
    if body == "new-check":
        body = {
            **demo_check("http://127.0.0.1:9/x", "http://127.0.0.1:9/h", name="sneaky"),
            "tags": ["deploy-smoke"],
        }
    response = await api.client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text


async def test_a_run_only_token_polls_its_run_set(api: Api) -> None:
    from services.api.auth import create_token

    await create(api, "cards", ["deploy-smoke"], ["us-east-1"])
    _, token = await create_token(api.sessions, "ci", scope="run")
    headers = {"Authorization": f"Bearer {token}"}
    started = await api.client.post("/api/v1/run-sets", json={"tag": "deploy-smoke"}, headers=headers)
    assert started.status_code == 202, started.text
    polled = await api.client.get(f"/api/v1/run-sets/{started.json()['id']}", headers=headers)
    assert polled.status_code == 200
    assert polled.json()["state"] == "running"
