"""Variables and secrets through the REST API: secrets write-only and sealed at rest, globals shared."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from contracts.v1 import CheckChanged
from services.api.tests.conftest import Api
from services.common.db.models import Check, Setting

SECRET = "card-api-s3cret-token"


def check(**changes: Any) -> dict[str, Any]:
    data = {
        "name": "cards",
        "regions": ["us-east-1"],
        "variables": {"path": "/api/cards"},
        "secrets": {"token": SECRET},
        "request": {
            "url": "{{ vars.base_url }}{{ vars.path }}",
            "headers": {"Authorization": "Bearer {{ secrets.token }}", "X-Shared": "{{ secrets.shared }}"},
        },
    }
    data.update(changes)
    return data


async def stored_text(api: Api) -> str:
    async with api.sessions() as session:
        specs = (await session.execute(select(Check.spec))).scalars().all()
        settings = (await session.execute(select(Setting.value))).scalars().all()
    return repr(specs) + repr(settings)


async def test_secrets_are_write_only_sealed_at_rest_and_globals_shared(api: Api) -> None:
    missing = await api.client.post("/api/v1/checks", json=check())
    assert missing.status_code == 422
    fields = {item["field"] for item in missing.json()["errors"]}
    assert fields == {"variables", "secrets"}, missing.json()

    assert (
        await api.client.put("/api/v1/variables/base_url", json={"value": "http://127.0.0.1:9"})
    ).status_code == 200
    assert (
        await api.client.put("/api/v1/secrets/shared", json={"value": "global-s3cret"})
    ).status_code == 200
    listed = (await api.client.get("/api/v1/secrets")).json()
    assert listed == {"secrets": {"shared": "********"}}
    assert (await api.client.get("/api/v1/variables")).json() == {
        "variables": {"base_url": "http://127.0.0.1:9"}
    }

    created = await api.client.post("/api/v1/checks", json=check())
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["secrets"] == {"token": "********"}
    assert view["global_secrets"] == {"shared": "********"}
    assert view["global_variables"] == {"base_url": "http://127.0.0.1:9"}
    at_rest = await stored_text(api)
    assert SECRET not in at_rest
    assert "global-s3cret" not in at_rest
    assert "sealed:v1:" in at_rest
    announced = [item for item in api.published.items if isinstance(item, CheckChanged)]
    assert SECRET not in announced[-1].model_dump_json()

    async with api.sessions() as session:
        before = (await session.execute(select(Check.spec))).scalar_one()["secrets"]["token"]
    edited = copy.deepcopy(view)
    edited["interval"] = 120
    updated = await api.client.put(f"/api/v1/checks/{view['id']}", json=edited)
    assert updated.status_code == 200, updated.text
    async with api.sessions() as session:
        after = (await session.execute(select(Check.spec))).scalar_one()["secrets"]["token"]
    assert after == before, "a masked secret written back keeps its sealed value"

    forged = copy.deepcopy(view)
    forged["secrets"] = {"token": before}
    assert (await api.client.put(f"/api/v1/checks/{view['id']}", json=forged)).status_code == 422

    changed = await api.client.put("/api/v1/variables/base_url", json={"value": "http://127.0.0.1:8"})
    assert changed.json()["updated_checks"] == ["cards"]
    again = (await api.client.get(f"/api/v1/checks/{view['id']}")).json()
    assert again["global_variables"] == {"base_url": "http://127.0.0.1:8"}
    assert again["revision"] == 3

    in_use = await api.client.delete("/api/v1/secrets/shared")
    assert in_use.status_code == 409
    assert "cards" in in_use.json()["detail"]
