"""End to end in embedded mode: one process, SQLite, in-process bus — the demo check, failing and recovering.

What a user would notice: every region's runs stored with observed values, a failing response-time
assertion when the target slows past 500 ms, one incident with one webhook notification, one recovery,
and ``seymour run --wait`` usable as a CI gate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import runtime
from services.cli import main as cli_main
from services.common.settings import Settings
from tests.support.api import Client
from tests.support.servers import DemoTarget, Receiver, demo_check, demo_target, receiver
from tests.support.waiting import eventually

REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]
TOKEN = "e2e-token"


@pytest.fixture
async def seymour(tmp_path: Path) -> AsyncIterator[tuple[Client, DemoTarget, Receiver]]:
    settings = Settings(
        data_dir=tmp_path,
        port=0,
        api_token=TOKEN,
        broker_url="memory://",
        heartbeat_interval=0.5,
        results_batch_ms=10,
        admin_password="e2e-password-1",
    )
    async with demo_target() as target, receiver() as sink:
        rt = await runtime.start(settings, runtime.SERVICES, runner_regions=REGIONS)
        try:
            yield Client(f"http://127.0.0.1:{rt.api_port()}", TOKEN), target, sink
        finally:
            await rt.stop()


def by_region(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        out.setdefault(run["region"], []).append(run)
    return out


async def test_demo_check_runs_fails_alerts_once_and_recovers(
    seymour: tuple[Client, DemoTarget, Receiver],
) -> None:
    api, target, sink = seymour
    check = await api.ok("POST", "/api/v1/checks", demo_check(target.url, sink.url, interval=1))
    check_id = check["id"]

    async def passed_everywhere() -> bool:
        runs = by_region(await api.runs(check_id, status="passed"))
        return all(runs.get(region) for region in REGIONS)

    await eventually(passed_everywhere, within=15, what="a passed run from every region")
    runs = await api.runs(check_id)
    assert {run["region"] for run in runs} == set(REGIONS)
    first = next(run for run in runs if run["status"] == "passed")
    observed = {(a["source"], a["property"]): a["observed"] for a in first["assertions"]}
    assert observed[("status_code", None)] == 201
    assert observed[("json_body", "$.title")] == "demo"
    assert observed[("json_body", "$.completed")] is False
    assert observed[("json_body", "$.dueDate")] is None
    assert observed[("header", "connection")] == "close"
    assert 0 < observed[("response_time", None)] < 500
    assert first["response"]["status_code"] == 201
    assert first["timings"]["total_ms"] > 0
    assert first["timings"]["ttfb_ms"] is not None
    assert all("Seymour/" in hit["agent"] for hit in target.hits)
    assert {hit["region"] for hit in target.hits} == set(REGIONS)
    assert sink.received == []

    target.delay_s = 0.6

    async def incident_open() -> Any:
        page = await api.ok("GET", "/api/v1/incidents", state="open", check_id=check_id)
        return page["items"]

    incidents = await eventually(incident_open, within=20, what="an open incident")
    failed = await api.runs(check_id, status="failed")
    assert failed, "slow runs are stored as failed"
    slow = failed[0]
    response_time = next(a for a in slow["assertions"] if a["source"] == "response_time")
    assert response_time["passed"] is False
    assert response_time["observed"] >= 500
    assert response_time["target"] == 500
    assert slow["error"]["class"] == "assertion"
    failing = {item["region"] if isinstance(item, dict) else item for item in incidents[0]["failing_regions"]}
    assert failing <= set(REGIONS)
    assert failing
    await eventually(lambda: sink.events().count("failure") == 1, within=15, what="one failure notification")

    target.delay_s = 0.0
    await eventually(lambda: "recovery" in sink.events(), within=20, what="a recovery notification")
    resolved = await api.ok("GET", "/api/v1/incidents", state="resolved", check_id=check_id)
    assert len(resolved["items"]) == 1
    assert resolved["items"][0]["resolved_at"] is not None
    await asyncio.sleep(2.5)  # more passing and failing-free slots: still exactly one of each
    assert sink.events().count("failure") == 1
    assert sink.events().count("recovery") == 1
    assert "seymour-demo" in str(sink.received[0])

    run_ids = [run["run_id"] for run in await api.runs(check_id)]
    assert len(run_ids) == len(set(run_ids))


async def test_seymour_run_wait_is_a_ci_gate(
    seymour: tuple[Client, DemoTarget, Receiver], capsys: pytest.CaptureFixture[str]
) -> None:
    api, target, sink = seymour
    spec = demo_check(target.url, sink.url, interval=3600, name="gate")
    await api.ok("POST", "/api/v1/checks", spec)
    argv = ["run", "gate", "--wait", "--url", api.base, "--token", api.token]
    assert await asyncio.to_thread(cli_main, argv) == 0
    out = capsys.readouterr().out
    for region in REGIONS:
        assert f"[{region}] PASSED" in out
    assert "PASS  status_code" in out

    target.status = 503
    assert await asyncio.to_thread(cli_main, argv) == 1
    out = capsys.readouterr().out
    assert "FAIL  status_code" in out
    assert "503" in out
    assert (
        await asyncio.to_thread(cli_main, ["run", "no-such-check", "--url", api.base, "--token", api.token])
        == 2
    )


async def test_seymour_run_tag_is_a_ci_gate_with_junit(
    seymour: tuple[Client, DemoTarget, Receiver], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from junitparser import Failure, JUnitXml

    api, target, sink = seymour
    good = demo_check(target.url, sink.url, interval=3600, name="smoke-cards")
    bad = demo_check(target.url, sink.url, interval=3600, name="smoke-title")
    bad["assertions"][2]["target"] = "not-demo"
    other = demo_check(target.url, sink.url, interval=3600, name="not-in-the-gate")
    for check, tags in ((good, ["deploy-smoke"]), (bad, ["deploy-smoke", "team:cards"]), (other, [])):
        await api.ok("POST", "/api/v1/checks", {**check, "tags": tags})
    report = tmp_path / "report.xml"
    ci_token = (await api.ok("POST", "/api/v1/tokens", {"name": "ci", "scope": "run"}))["token"]
    common = ["--url", api.base, "--token", ci_token]
    argv = ["run", "--tag", "deploy-smoke", "--wait", "--junit", str(report), *common]
    assert await asyncio.to_thread(cli_main, argv) == 1
    out = capsys.readouterr().out
    assert "check smoke-cards" in out
    assert re.search(r"FAIL\s+json_body\s+\$\.title\s+equals\s+not-demo\s+demo", out)
    assert "not-in-the-gate" not in out

    xml = JUnitXml.fromfile(str(report))
    suites = list(xml) if hasattr(xml, "__iter__") else [xml]
    cases = [case for suite in suites for case in suite]
    assert sorted(case.name for case in cases) == sorted(
        f"{name} [{region}]" for name in ("smoke-cards", "smoke-title") for region in REGIONS
    )
    failing = {case.name: case.result for case in cases if case.result}
    assert sorted(failing) == sorted(f"smoke-title [{region}]" for region in REGIONS)
    for results in failing.values():
        assert isinstance(results[0], Failure)
        assert results[0].message == "json_body $.title equals not-demo: observed demo"

    narrowed = ["run", "--tag", "deploy-smoke", "--regions", "eu-north-1", "--junit", str(report), *common]
    assert await asyncio.to_thread(cli_main, narrowed) == 1
    cases = [case for suite in JUnitXml.fromfile(str(report)) for case in suite]
    assert sorted(case.name for case in cases) == ["smoke-cards [eu-north-1]", "smoke-title [eu-north-1]"]

    capsys.readouterr()

    assert await asyncio.to_thread(cli_main, ["run", "--tag", "nobody", *common]) == 2
    assert "no check is tagged 'nobody'" in capsys.readouterr().err

    admin = ["--url", api.base, "--token", api.token]
    assert await asyncio.to_thread(cli_main, ["list", "--tag", "deploy-smoke", *admin]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == ["NAME", "smoke-cards", "smoke-title"]
    assert "deploy-smoke,team:cards" in listed[2]
    assert await asyncio.to_thread(cli_main, ["pause", "--tag", "deploy-smoke", *common]) == 2
    assert "cannot change anything" in capsys.readouterr().err
    assert await asyncio.to_thread(cli_main, ["pause", "--tag", "deploy-smoke", *admin]) == 0
    assert "paused 2 checks tagged deploy-smoke" in capsys.readouterr().out
    assert await asyncio.to_thread(cli_main, ["list", "--tag", "deploy-smoke", *admin]) == 0
    assert capsys.readouterr().out.count("paused") == 2
    assert await asyncio.to_thread(cli_main, ["resume", "--tag", "team:cards", *admin]) == 0
    assert "resumed 1 check tagged team:cards\n  smoke-title" in capsys.readouterr().out


@pytest.fixture
async def bad_targets(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Local servers that fail the ways real endpoints do: silent, untrusted TLS, huge answers."""
    import ssl

    from aiohttp import web

    from tests.support.servers import serve
    from tests.support.tls import self_signed

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, then never answers
        writer.close()

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]

    async def huge(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * (3 * 1024 * 1024), content_type="application/json")

    app = web.Application()
    app.router.add_get("/", huge)
    cert, key = self_signed(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    tls_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with serve(app) as plain:
        yield {
            "refused": "http://127.0.0.1:9/",
            "timeout": f"http://127.0.0.1:{silent_port}/",
            "tls": f"https://127.0.0.1:{tls_port}/",
            "too_large": plain + "/",
        }
    await runner.cleanup()
    silent.close()


@pytest.mark.parametrize(
    ("kind", "error_class", "assertions"),
    [
        ("refused", "connect", []),
        ("timeout", "timeout", []),
        ("tls", "tls", []),
        ("too_large", "too_large", [{"source": "json_body", "property": "$.id", "comparison": "exists"}]),
    ],
    ids=["refused", "timeout", "tls-untrusted", "too-large"],
)
async def test_unreachable_targets_are_stored_as_errors(
    seymour: tuple[Client, DemoTarget, Receiver],
    bad_targets: dict[str, str],
    kind: str,
    error_class: str,
    assertions: list[dict[str, Any]],
) -> None:
    api, _, _ = seymour
    spec = {
        "name": kind,
        "request": {"url": bad_targets[kind]},
        "regions": ["us-east-1"],
        "interval": 3600,
        "timeout": 1,
        "assertions": assertions,
    }
    check = await api.ok("POST", "/api/v1/checks", spec)
    result = await api.ok("POST", f"/api/v1/checks/{check['id']}/runs", wait="true")
    run = result["runs"][0]
    assert (run["status"], run["error"]["class"]) == ("error", error_class), run["error"]
    stored = await api.ok("GET", f"/api/v1/runs/{run['run_id']}")
    assert stored["error"]["class"] == error_class
    assert (await api.ok("GET", "/healthz"))["status"] == "ok"


async def test_apply_and_export_round_trip(
    seymour: tuple[Client, DemoTarget, Receiver], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api, target, sink = seymour
    good = demo_check(target.url, sink.url, interval=3600, name="applied")
    good["alerts"] = [
        {"channel": "webhook", "url": sink.url + "?token=secret-in-url", "secret": "hmac-secret"}
    ]
    bad = {**good, "name": "broken", "interval": 0, "regions": ["mars-1"]}
    path = tmp_path / "checks.yaml"
    path.write_text(yaml.safe_dump_all([good, bad], sort_keys=False))
    common = ["--url", api.base, "--token", api.token]

    assert await asyncio.to_thread(cli_main, ["apply", "-f", str(path), *common]) == 1
    captured = capsys.readouterr()
    assert "created applied" in captured.out
    assert "broken" in captured.err
    assert "interval" in captured.err
    assert "regions" in captured.err

    assert await asyncio.to_thread(cli_main, ["export", *common]) == 0
    exported = yaml.safe_load(capsys.readouterr().out)["checks"]
    assert [check["name"] for check in exported] == ["applied"]
    channel = exported[0]["alerts"][0]
    assert "secret-in-url" not in str(exported)
    assert channel["secret"] == "********"

    exported[0]["interval"] = 1800
    path.write_text(yaml.safe_dump({"checks": exported}, sort_keys=False))
    assert await asyncio.to_thread(cli_main, ["apply", "-f", str(path), *common]) == 0
    assert "updated applied" in capsys.readouterr().out
    checks = (await api.ok("GET", "/api/v1/checks"))["items"]
    assert [(c["name"], c["interval"], c["revision"]) for c in checks] == [("applied", 1800, 2)]
    # The masked secrets written back kept their stored values: a test notification goes to the real
    # URL (with its token) and is signed with the real secret.
    sent = await api.ok("POST", f"/api/v1/checks/{checks[0]['id']}/alerts/0/test")
    assert sent["ok"] is True, sent
    assert sink.paths[-1].endswith("?token=secret-in-url")
    signature = sink.headers[-1]["X-Seymour-Signature"]
    assert signature == "sha256=" + hmac.new(b"hmac-secret", sink.raw[-1], hashlib.sha256).hexdigest()
