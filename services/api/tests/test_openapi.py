"""The REST API describes its answers: ``/schema/openapi.json`` matches the committed snapshot, and real
answers match the shapes it declares."""

from __future__ import annotations

import difflib
import uuid
from datetime import timedelta
from typing import Any

import jsonschema
import pytest

from contracts.v1 import utcnow
from services.api.openapi_snapshot import SNAPSHOT, render, strip_version
from services.common.db.models import Incident, Notification, Run
from tests.support.servers import demo_check

from .conftest import Api

REGENERATE = "python -m services.api.openapi_snapshot --write"


@pytest.fixture
async def served(api: Api) -> dict[str, Any]:
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_served_schema_matches_the_committed_snapshot(served: dict[str, Any]) -> None:
    """A change to a path, a parameter or an answer's shape fails here until it is made on purpose."""
    committed = SNAPSHOT.read_text(encoding="utf-8")
    current = render(strip_version(served))
    diff = "".join(
        difflib.unified_diff(committed.splitlines(True), current.splitlines(True), "committed", "served", n=2)
    )
    assert committed == current, (
        f"the REST API changed (diff below). If that is on purpose, renew the snapshot with {REGENERATE} "
        f"and commit services/api/openapi.json.\n{diff[:20000]}"
    )


def test_every_json_answer_of_the_api_declares_its_shape(served: dict[str, Any]) -> None:
    """No JSON answer is an untyped object: each names a component or is an empty body."""
    untyped = []
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation.get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and schema is not None and "$ref" not in schema:
                    untyped.append(f"{method.upper()} {path} {status}: {schema}")
    assert untyped == []


class Conformance:
    """Checks answers against the response schema ``served`` declares for their operation."""

    def __init__(self, api: Api, served: dict[str, Any]) -> None:
        self.api = api
        self.served = served
        self.checked: list[str] = []

    async def call(self, method: str, path: str, template: str | None = None, **kwargs: Any) -> Any:
        response = await self.api.client.request(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        operation = self.served["paths"][template or path][method.lower()]
        declared = operation["responses"][str(response.status_code)]
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            root = {**schema, "components": self.served["components"]}
            jsonschema.Draft202012Validator(root).validate(response.json())
            self.checked.append(f"{method} {template or path}")
        return response.json() if response.content else None


async def test_real_answers_match_the_declared_shapes(api: Api, served: dict[str, Any]) -> None:
    """Every declared shape is checked against an answer the API really gave, so a view that drifts
    from its declaration (a key renamed, a null where none was declared) fails here."""
    check = Conformance(api, served)
    body = demo_check("https://api.example.com/x", "https://hooks.example.com/y", interval=60)
    body["tags"] = ["shop"]
    created = await check.call("POST", "/api/v1/checks", json=body)
    cid = created["id"]
    run_id = uuid.uuid4()
    one = "/api/v1/checks/{check_id}"
    async with api.sessions() as session, session.begin():
        now = utcnow()
        session.add(
            Run(
                run_id=run_id,
                check_id=uuid.UUID(cid),
                region="eu-north-1",
                slot=now,
                trigger="scheduled",
                status="failed",
                started_at=now,
                completed_at=now + timedelta(seconds=1),
                total_ms=12.0,
                error_class="assertion",
                error_message="1 assertion failed",
                assertions=[
                    {
                        "source": "status_code",
                        "comparison": "equals",
                        "target": 200,
                        "observed": 503,
                        "passed": False,
                    }
                ],
                timings={"total_ms": 12.0},
            )
        )
    incident_id = uuid.uuid4()
    async with api.sessions() as session, session.begin():
        session.add(
            Incident(
                id=incident_id,
                check_id=uuid.UUID(cid),
                state="open",
                opened_at=now,
                opened_slot=now,
                failing_regions=[{"region": "eu-north-1", "name": "Stockholm", "status": "failed"}],
                failing_assertions=[
                    {
                        "region": "eu-north-1",
                        "kind": "error",
                        "class": "timeout",
                        "message": "",
                        "text": "timeout:",
                    }
                ],
            )
        )
        session.add(
            Notification(
                idempotency_key=f"{incident_id}:failure:0",
                incident_id=incident_id,
                check_id=uuid.UUID(cid),
                channel_index=0,
                channel_type="webhook",
                transition="failure",
                status="failed",
                attempts=3,
                last_error="HTTP 500 (receiver error)",
                attempt_log=[{"at": now.isoformat(), "error": "HTTP 500 (receiver error)"}],
            )
        )
    await check.call("GET", f"/api/v1/incidents/{incident_id}", "/api/v1/incidents/{incident_id}")
    await check.call("GET", "/api/v1/incidents?notifications=true", "/api/v1/incidents")
    await check.call("GET", "/api/v1/checks")
    await check.call("GET", f"/api/v1/checks/{cid}", one)
    await check.call("PUT", f"/api/v1/checks/{cid}", one, json=body)
    await check.call("POST", f"/api/v1/checks/{cid}/pause", one + "/pause")
    await check.call("POST", f"/api/v1/checks/{cid}/resume", one + "/resume")
    await check.call("POST", "/api/v1/checks/pause?tag=shop", "/api/v1/checks/pause")
    await check.call("POST", "/api/v1/checks/resume?tag=shop", "/api/v1/checks/resume")
    await check.call("GET", "/api/v1/tags")
    runs = await check.call("GET", f"/api/v1/checks/{cid}/runs", one + "/runs")
    assert runs["items"][0]["error"] == {"class": "assertion", "message": "1 assertion failed"}
    await check.call("GET", f"/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}")
    await check.call("POST", f"/api/v1/checks/{cid}/runs", one + "/runs")
    await check.call("GET", "/api/v1/regions")
    await check.call("GET", f"/api/v1/checks/{cid}/summary", one + "/summary")
    await check.call("GET", f"/api/v1/checks/{cid}/chart", one + "/chart")
    await check.call("GET", f"/api/v1/checks/{cid}/incidents", one + "/incidents")
    await check.call("GET", "/api/v1/incidents")
    await check.call("GET", "/api/v1/notifications/failed")
    await check.call("GET", "/api/v1/settings/alerts")
    await check.call("GET", "/api/v1/users")
    await check.call("POST", "/api/v1/users", json={"username": "ann", "password": "ann-password-1"})
    await check.call("POST", "/api/v1/tokens", json={"name": "ci"})
    await check.call("GET", "/api/v1/tokens")
    await check.call("PUT", "/api/v1/variables/base", "/api/v1/variables/{name}", json={"value": "x"})
    await check.call("GET", "/api/v1/variables")
    await check.call("PUT", "/api/v1/secrets/key", "/api/v1/secrets/{name}", json={"value": "x"})
    await check.call("GET", "/api/v1/secrets")
    page = await check.call(
        "POST",
        "/api/v1/status-pages",
        json={
            "slug": "shop",
            "title": "Shop",
            "groups": [{"name": "All", "checks": [{"check_id": cid, "display_name": "Shop"}]}],
        },
    )
    pages = "/api/v1/status-pages/{page_id}"
    await check.call("GET", "/api/v1/status-pages")
    await check.call("GET", f"/api/v1/status-pages/{page['id']}", pages)
    await check.call(
        "POST",
        f"/api/v1/status-pages/{page['id']}/notices",
        pages + "/notices",
        json={"kind": "incident", "status": "investigating", "title": "Slow", "body": "Looking."},
    )
    await check.call("GET", f"/api/v1/status-pages/{page['id']}/notices", pages + "/notices")
    await check.call("GET", f"/api/v1/checks/{cid}/badges", one + "/badges")
    run_set = await check.call("POST", "/api/v1/run-sets", json={"tag": "shop"})
    await check.call("GET", f"/api/v1/run-sets/{run_set['id']}", "/api/v1/run-sets/{run_set_id}")
    assert len(check.checked) >= 35, check.checked
