"""REST API: check CRUD, 422s naming the field, write-only secrets, auth, runs and run-now."""

from __future__ import annotations

import asyncio
import copy
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.v1 import CheckChanged, CheckDue, run_id_for, utcnow
from services.api.auth import create_token
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run
from tests.support.servers import demo_check

from .conftest import Api, opened


def _demo() -> dict[str, Any]:
    """The demo check of the test-loop issue, with a secret header and a signed webhook."""
    check = demo_check(
        "https://api.example.com/api/cards", "https://hooks.example.com/x/very-secret", interval=60
    )
    check["request"]["headers"]["Authorization"] = "Bearer s3cret"
    check["alerts"][0]["secret"] = "sign-me"
    return check


DEMO: dict[str, Any] = _demo()


def with_change(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(DEMO)
    target: Any = body
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is KeyError:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


INVALID = [
    ("name", "", "name"),
    ("name", KeyError, "name"),
    ("request.url", "ftp://x", "request.url"),
    ("request.url", "not a url", "request.url"),
    ("request.method", "FETCH", "request.method"),
    ("request.headers", {"bad header": "x"}, "request.headers"),
    ("request.max_redirects", 99, "request.max_redirects"),
    ("assertions.0.comparison", "contains", "assertions.0"),
    ("assertions.0.target", "fast", "assertions.0"),
    ("assertions.1.source", "body_size", "assertions.1.source"),
    ("assertions.2.property", None, "assertions.2"),
    ("assertions.2.property", "$..[", "assertions.2"),
    ("assertions.4.target", 3, "assertions.4"),
    ("assertions.6.comparison", "is_null", "assertions.6"),
    ("regions", [], "regions"),
    ("regions", ["mars-north-1"], "regions"),
    ("interval", 0, "interval"),
    ("interval", "often", "interval"),
    ("timeout", -1, "timeout"),
    ("alerts.0.channel", "carrier-pigeon", "alerts.0"),
    ("alerts.0.url", "nope", "alerts.0.url"),
    ("alerts.0.on", ["sometimes"], "alerts.0.on.0"),
    ("unknown_field", 1, "unknown_field"),
]


@pytest.mark.parametrize(("path", "value", "field"), INVALID, ids=[f"{p}={v!r}" for p, v, _ in INVALID])
async def test_invalid_config_is_422_naming_the_field(api: Api, path: str, value: Any, field: str) -> None:
    response = await api.client.post("/api/v1/checks", json=with_change(path, value))
    assert response.status_code == 422, response.text
    body = response.json()
    fields = [error["field"] for error in body["errors"]]
    assert any(name.startswith(field) for name in fields), fields
    assert field.split(".")[0] in body["detail"]
    listing = await api.client.get("/api/v1/checks")
    assert listing.json()["total"] == 0


async def test_not_json_is_400(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/checks", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


async def test_crud_round_trip_announces_changes_and_masks_secrets(api: Api) -> None:
    created = await api.client.post("/api/v1/checks", json=DEMO)
    assert created.status_code == 201, created.text
    check = created.json()
    check_id = check["id"]
    assert check["revision"] == 1
    assert check["request"]["headers"]["Authorization"] == "********"
    assert check["alerts"][0]["url"] == "https://hooks.example.com/********"
    assert check["alerts"][0]["secret"] == "********"
    assert check["assertions"][3]["target"] is False

    duplicate = await api.client.post("/api/v1/checks", json=DEMO)
    assert duplicate.status_code == 409

    edited = copy.deepcopy(check)
    edited["interval"] = 30
    updated = await api.client.put(f"/api/v1/checks/{check_id}", json=edited)
    assert updated.status_code == 200, updated.text
    assert updated.json()["revision"] == 2
    assert updated.json()["interval"] == 30

    changes = [m for m in api.published.items if isinstance(m, CheckChanged)]
    assert [m.change for m in changes] == ["created", "updated"]
    stored = opened(changes[-1].spec)
    assert stored.request.headers["Authorization"] == "Bearer s3cret"
    assert stored.alerts[0].url == "https://hooks.example.com/x/very-secret"  # type: ignore[union-attr]

    paused = await api.client.post(f"/api/v1/checks/{check_id}/pause")
    assert paused.json()["enabled"] is False
    resumed = await api.client.post(f"/api/v1/checks/{check_id}/resume")
    assert resumed.json()["enabled"] is True

    assert (await api.client.delete(f"/api/v1/checks/{check_id}")).status_code == 204
    assert (await api.client.get(f"/api/v1/checks/{check_id}")).status_code == 404
    assert [m.change for m in api.published.items if isinstance(m, CheckChanged)][-1] == "deleted"


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 401), ("Bearer wrong", 401), ("Basic abc", 401), ("Bearer test-admin-token", 200)],
    ids=["none", "wrong-token", "wrong-scheme", "admin-token"],
)
async def test_every_api_route_needs_a_token(api: Api, header: str | None, expected: int) -> None:
    headers = {"Authorization": header} if header else {}
    api.client.headers.pop("Authorization", None)
    for path in ("/api/v1/checks", "/api/v1/regions", "/api/v1/incidents"):
        response = await api.client.get(path, headers=headers)
        assert response.status_code == expected, path
    assert (await api.client.get("/healthz")).status_code == 200


async def test_stored_tokens_work_until_revoked(api: Api) -> None:
    row, token = await create_token(api.sessions, "ci")
    api.client.headers["Authorization"] = f"Bearer {token}"
    assert (await api.client.get("/api/v1/checks")).status_code == 200
    async with api.sessions() as session, session.begin():
        stored = await session.get(type(row), row.id)
        stored.revoked_at = utcnow()
    assert (await api.client.get("/api/v1/checks")).status_code == 401


async def test_run_now_publishes_a_manual_slot_and_waits_for_runs(api: Api) -> None:
    check = (await api.client.post("/api/v1/checks", json=DEMO)).json()
    accepted = await api.client.post(f"/api/v1/checks/{check['id']}/runs")
    assert accepted.status_code == 202
    dues = [m for m in api.published.items if isinstance(m, CheckDue)]
    assert dues[-1].trigger == "manual"
    assert len(accepted.json()["run_ids"]) == 3

    seen = len([m for m in api.published.items if isinstance(m, CheckDue)])
    url = str(api.sessions.kw["bind"].url)

    async def store_runs_when_due() -> None:
        """Play the runners: store the runs of the next manual slot (from another thread, since the
        test client may block this loop while it waits)."""
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        for _ in range(500):
            dues = [m for m in api.published.items if isinstance(m, CheckDue)]
            if len(dues) > seen:
                break
            await asyncio.sleep(0.01)
        due = dues[-1]
        await asyncio.sleep(0.2)
        async with sessions() as session, session.begin():
            for region in DEMO["regions"]:
                session.add(
                    Run(
                        run_id=run_id_for(due.check_id, due.slot, region, "manual"),
                        check_id=due.check_id,
                        region=region,
                        slot=due.slot,
                        trigger="manual",
                        status="passed",
                        started_at=due.slot,
                        completed_at=due.slot + timedelta(seconds=1),
                        total_ms=12.0,
                        assertions=[],
                        timings={"total_ms": 12.0},
                    )
                )
        await engine.dispose()

    player = threading.Thread(target=asyncio.run, args=(store_runs_when_due(),))
    player.start()
    waited = await api.client.post(f"/api/v1/checks/{check['id']}/runs?wait=true", timeout=30)
    player.join(10)
    assert waited.status_code == 200, waited.text
    body = waited.json()
    assert body["pending"] == []
    assert [run["region"] for run in body["runs"]] == DEMO["regions"]

    runs = await api.client.get(f"/api/v1/checks/{check['id']}/runs", params={"region": "eu-north-1"})
    assert [run["region"] for run in runs.json()["items"]] == ["eu-north-1"]
    pages = []
    cursor: str | None = None
    for _ in range(len(DEMO["regions"]) + 1):
        params = {"limit": 1, **({"before": cursor} if cursor else {})}
        page = (await api.client.get(f"/api/v1/checks/{check['id']}/runs", params=params)).json()
        pages += [run["run_id"] for run in page["items"]]
        cursor = page["next_before"]
        if not page["items"]:
            break
    assert sorted(pages) == sorted(run["run_id"] for run in body["runs"])
    bad = await api.client.get(f"/api/v1/checks/{check['id']}/runs", params={"before": "soon"})
    assert bad.status_code == 422
    assert "before" in bad.text
    one = await api.client.get(f"/api/v1/runs/{body['runs'][0]['run_id']}")
    assert one.json()["status"] == "passed"
    assert (await api.client.get(f"/api/v1/runs/{uuid.uuid4()}")).status_code == 404


async def test_regions_list_known_regions_with_health(api: Api) -> None:
    body = (await api.client.get("/api/v1/regions")).json()
    codes = {item["code"]: item for item in body["items"]}
    assert codes["eu-north-1"]["name"] == "Stockholm"
    assert codes["eu-north-1"]["health"] == "none"


async def test_openapi_schema_is_served(api: Api) -> None:
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/api/v1/checks" in response.json()["paths"]


async def test_an_edit_reads_and_replaces_the_check_in_one_transaction(api: Api) -> None:
    """The stored spec (for masked secrets) is read in the write's transaction, on one pooled
    connection; a body that does not validate leaves the check and the bus as they were."""
    from sqlalchemy import event

    created = await api.client.post("/api/v1/checks", json=DEMO)
    check = created.json()
    checkouts: list[object] = []
    pool = api.sessions.kw["bind"].sync_engine.pool
    listener = lambda *_: checkouts.append(object())  # noqa: E731
    event.listen(pool, "checkout", listener)
    try:
        edited = {**copy.deepcopy(check), "interval": 45}
        updated = await api.client.put(f"/api/v1/checks/{check['id']}", json=edited)
        assert updated.status_code == 200, updated.text
        assert len(checkouts) == 1
    finally:
        event.remove(pool, "checkout", listener)
    published = len(api.published.items)
    broken = await api.client.put(f"/api/v1/checks/{check['id']}", json={**edited, "interval": -1})
    assert broken.status_code == 422
    after = (await api.client.get(f"/api/v1/checks/{check['id']}")).json()
    assert after["revision"] == 2
    assert after["interval"] == 45
    assert after["request"]["headers"]["Authorization"] == "********"
    assert len(api.published.items) == published
    missing = await api.client.put(f"/api/v1/checks/{uuid.uuid4()}", json=edited)
    assert missing.status_code == 404


async def test_concurrent_edits_of_one_check_each_land_as_their_own_revision(api: Api) -> None:
    await concurrent_edits(api)


@pytest.mark.postgres
async def test_concurrent_edits_of_one_check_each_land_as_their_own_revision_on_postgres(pg_api: Api) -> None:
    await concurrent_edits(pg_api)


async def concurrent_edits(api: Api) -> None:
    """No row lock is held while an edit is validated: an edit that finds the check changed since its
    read reads it again and lands on top, so every edit gets its own revision and none is lost."""
    created = (await api.client.post("/api/v1/checks", json=DEMO)).json()
    published = len(api.published.items)
    edits = [{**copy.deepcopy(created), "interval": 30 + index} for index in range(6)]
    answers = await asyncio.gather(
        *(api.client.put(f"/api/v1/checks/{created['id']}", json=edit) for edit in edits)
    )
    assert [answer.status_code for answer in answers] == [200] * len(edits), [a.text for a in answers]
    assert sorted(answer.json()["revision"] for answer in answers) == list(range(2, 2 + len(edits)))
    after = (await api.client.get(f"/api/v1/checks/{created['id']}")).json()
    assert after["revision"] == 1 + len(edits)
    assert after["request"]["headers"]["Authorization"] == "********"  # kept through every edit
    announced = [item for item in api.published.items[published:] if getattr(item, "change", "") == "updated"]
    assert sorted(item.revision for item in announced) == list(range(2, 2 + len(edits)))
