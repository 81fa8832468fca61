"""End to end in embedded mode: the demo check as a multi-step scenario against a real local card API.

What a user would notice: ``seymour apply`` takes the scenario's YAML, ``seymour run --wait`` prints
every step, stored runs keep each step with its assertions, the run page shows the steps, a hundred
runs from three regions leave the card store as it was, a broken step still gets its teardown, and
``seymour export`` writes the steps back.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from services import runtime
from services.cli import main as cli_main
from services.common.settings import Settings
from tests.support.api import Client
from tests.support.servers import CardApi, card_api, demo_scenario
from tests.support.waiting import eventually

REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]
TOKEN = "e2e-token"


@pytest.fixture
async def seymour(tmp_path: Path) -> AsyncIterator[tuple[Client, CardApi]]:
    settings = Settings(
        data_dir=tmp_path,
        port=0,
        api_token=TOKEN,
        broker_url="memory://",
        heartbeat_interval=0.5,
        results_batch_ms=10,
        admin_password="e2e-password-1",
    )
    async with card_api() as cards:
        rt = await runtime.start(settings, runtime.SERVICES, runner_regions=REGIONS)
        try:
            yield Client(f"http://127.0.0.1:{rt.api_port()}", TOKEN), cards
        finally:
            await rt.stop()


async def page_as_admin(base: str, path: str) -> str:
    """Log in through the form as the admin and fetch one page."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{base}/login") as login:
            found = re.search(r'name="_csrf" value="([^"]+)"', await login.text())
        assert found is not None
        form = {"username": "admin", "password": "e2e-password-1", "_csrf": found.group(1), "next": "/"}
        async with session.post(f"{base}/login", data=form) as done:
            assert done.status == 200
        async with session.get(f"{base}{path}") as page:
            assert page.status == 200
            return await page.text()


async def test_demo_scenario_end_to_end(
    seymour: tuple[Client, CardApi], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api, cards = seymour
    common = ["--url", api.base, "--token", api.token]
    scenario = demo_scenario(cards.base, name="cards", interval=3600)
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump({"checks": [scenario]}, sort_keys=False))
    assert await asyncio.to_thread(cli_main, ["apply", "-f", str(path), *common]) == 0
    capsys.readouterr()

    assert await asyncio.to_thread(cli_main, ["run", "cards", "--wait", *common]) == 0
    out = capsys.readouterr().out
    for region in REGIONS:
        assert f"[{region}] PASSED" in out
    assert out.count("step create: PASSED") == 3
    assert out.count("step fetch: PASSED") == 3
    assert out.count("teardown delete: PASSED") == 3
    assert "extracted steps.create.id = " in out
    assert cards.cards == {}

    check = (await api.ok("GET", "/api/v1/checks"))["items"][0]
    before = len(cards.cards)
    for _ in range(34):
        await api.ok("POST", f"/api/v1/checks/{check['id']}/runs")

    async def all_stored() -> list[dict[str, Any]]:
        runs = await api.runs(check["id"])
        return runs if len(runs) >= 3 + 34 * 3 else []

    runs = await eventually(all_stored, within=60, what="102 more runs stored")
    assert {run["region"] for run in runs} == set(REGIONS)
    assert [run["status"] for run in runs] == ["passed"] * len(runs)
    assert cards.created == len(runs)
    assert len(cards.cards) == before
    stored = runs[0]
    assert [(step["name"], step["status"]) for step in stored["steps"]] == [
        ("create", "passed"),
        ("fetch", "passed"),
        ("delete", "passed"),
    ]
    assert len(stored["steps"][0]["assertions"]) == 7
    total = sum(step["timings"]["total_ms"] for step in stored["steps"])
    assert stored["timings"]["total_ms"] == pytest.approx(total, abs=0.01)

    html = await page_as_admin(api.base, f"/runs/{stored['run_id']}")
    assert 'data-step="create"' in html
    assert 'data-step="delete"' in html
    assert "steps.create.id" in html
    check_page = await page_as_admin(api.base, f"/checks/{check['id']}")
    assert '<option value="fetch">step fetch</option>' in check_page

    chart_path = f"/checks/{check['id']}/chart.json?window=1h&step=fetch"
    chart = json.loads(await page_as_admin(api.base, chart_path))
    assert chart["step"] == "fetch"
    fetch_ms = {
        (run["region"], round(step["timings"]["total_ms"], 2))
        for run in runs
        for step in run["steps"]
        if step["name"] == "fetch"
    }
    charted = {(series["region"], ms) for series in chart["series"] for ms in series["ms"]}
    assert charted == fetch_ms
    assert sum(len(series["t"]) for series in chart["series"]) == len(runs)

    broken = {**scenario}
    broken["steps"] = [
        scenario["steps"][0],
        {
            **scenario["steps"][1],
            "assertions": [{"source": "status_code", "comparison": "equals", "target": 201}],
        },
    ]
    await api.ok("PUT", f"/api/v1/checks/{check['id']}", broken)
    assert await asyncio.to_thread(cli_main, ["run", "cards", "--wait", *common]) == 1
    out = capsys.readouterr().out
    assert out.count("step fetch: FAILED") == 3
    assert out.count("teardown delete: PASSED") == 3
    assert "error: assertion: step 'fetch': status_code 200" in out
    latest = (await api.runs(check["id"]))[0]
    assert latest["failed_step"] == "fetch"
    assert len(cards.cards) == before

    assert await asyncio.to_thread(cli_main, ["export", *common]) == 0
    exported = yaml.safe_load(capsys.readouterr().out)["checks"][0]
    assert "request" not in exported
    assert [step["name"] for step in exported["steps"]] == ["create", "fetch"]
    assert exported["teardown"][0]["request"]["url"] == "{{ vars.base_url }}/api/cards/{{ steps.create.id }}"


async def test_variables_and_secrets_reach_the_run_and_nowhere_else(
    seymour: tuple[Client, CardApi], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api, cards = seymour
    cards.token = "card-reader-s3cret"
    common = ["--url", api.base, "--token", api.token]
    await api.ok("PUT", "/api/v1/variables/base_url", {"value": cards.base})
    scenario = demo_scenario(cards.base, name="secret-cards", interval=3600)
    del scenario["variables"]
    scenario["secrets"] = {"reader": cards.token}
    scenario["steps"][1]["request"]["headers"] = {"Authorization": "Bearer {{ secrets.reader }}"}
    scenario["steps"][1]["request"]["url"] += "?k={{ secrets.reader }}"
    check = await api.ok("POST", "/api/v1/checks", scenario)
    assert check["secrets"] == {"reader": "********"}

    assert await asyncio.to_thread(cli_main, ["run", "secret-cards", "--wait", *common]) == 0
    out = capsys.readouterr().out
    assert out.count("step fetch: PASSED") == 3
    assert cards.token not in out
    runs = await api.runs(check["id"])
    assert len(runs) == 3
    assert cards.token not in str(runs)
    assert runs[0]["steps"][1]["request"]["headers"]["Authorization"] == "********"
    assert runs[0]["steps"][1]["request"]["url"].endswith("?k=********")
    assert cards.cards == {}

    assert await asyncio.to_thread(cli_main, ["export", *common]) == 0
    exported = capsys.readouterr().out
    assert cards.token not in exported
    assert "reader: '********'" in exported


async def test_a_secret_header_typed_into_a_check_is_sealed_and_still_sent(
    seymour: tuple[Client, CardApi], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ``{{ secrets.x }}`` here: the token is typed into the header. The database file holds it only
    sealed, and every region's run still sends it (the router opens it into that run)."""
    api, cards = seymour
    cards.token = "typed-header-s3cret"
    scenario = demo_scenario(cards.base, name="typed-header", interval=3600)
    scenario["steps"][1]["request"]["headers"] = {"Authorization": f"Bearer {cards.token}"}
    check = await api.ok("POST", "/api/v1/checks", scenario)
    assert check["steps"][1]["request"]["headers"]["Authorization"] == "********"
    files = await asyncio.to_thread(lambda: sorted(tmp_path.glob("seymour.db*")))  # and its WAL
    assert files
    for path in files:
        assert cards.token.encode() not in await asyncio.to_thread(path.read_bytes), path.name

    common = ["--url", api.base, "--token", api.token]
    assert await asyncio.to_thread(cli_main, ["run", "typed-header", "--wait", *common]) == 0
    out = capsys.readouterr().out
    assert out.count("step fetch: PASSED") == 3
    runs = await api.runs(check["id"])
    assert cards.token not in str(runs)
    assert cards.cards == {}
