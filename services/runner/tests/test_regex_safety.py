"""A user's regex cannot stall a runner: catastrophic patterns end fast, other checks keep their schedule."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from contracts.v1 import CheckCompleted, RunCheck
from contracts.v1.checks import SAVING, CheckSpec
from services.common.bus.memory import MemoryBus
from services.runner.http_check import HttpChecker
from services.runner.tests.support import make_spec
from services.runner.tests.test_handlers import Tap, runner_bus  # noqa: F401  (fixture)

EVIL = "a" * 40 + "b"
#: Backtracks for hours under Python's ``re`` (2^40 paths); RE2 answers in microseconds.
CATASTROPHIC = "^(a+)+$"
STALL_LIMIT_S = 10.0


@pytest.fixture
def stall_guard() -> Iterator[None]:
    """Fails the test once it has run ``STALL_LIMIT_S``, even when the event loop thread is stuck in
    one call: the alarm interrupts a backtracking ``re`` search (it checks for signals), where a loop
    timeout cannot; it repeats, so a second stuck search is interrupted too."""

    def stalled(*_: Any) -> None:
        raise TimeoutError(f"still running after {STALL_LIMIT_S} s: the event loop was stuck")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.setitimer(signal.ITIMER_REAL, STALL_LIMIT_S, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def _evil_text(_: web.Request) -> web.Response:
    return web.Response(text=EVIL, headers={"X-Evil": EVIL})


async def _evil_json(_: web.Request) -> web.Response:
    return web.json_response({"name": EVIL, "items": [{"name": EVIL, "id": 1}, {"name": "aa", "id": 2}]})


async def _evil_key(_: web.Request) -> web.Response:
    return web.json_response({EVIL: 1})


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.fixture
async def evil_target() -> AsyncIterator[str]:
    """A local endpoint answering with text made to make a backtracking regex explode."""
    app = web.Application()
    app.router.add_get("/text", _evil_text)
    app.router.add_get("/json", _evil_json)
    app.router.add_get("/ok", _ok)
    app.router.add_get("/evil-key", _evil_key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


SCHEMA_PATTERN = {"type": "object", "properties": {"name": {"type": "string", "pattern": CATASTROPHIC}}}
SCHEMA_KEYS = {"type": "object", "patternProperties": {CATASTROPHIC: {}}, "additionalProperties": False}

EVIL_ASSERTIONS = [
    ("text", {"source": "text_body", "comparison": "matches", "target": CATASTROPHIC}, "failed"),
    ("text", {"source": "text_body", "comparison": "not_matches", "target": CATASTROPHIC}, "passed"),
    (
        "text",
        {"source": "header", "property": "X-Evil", "comparison": "matches", "target": CATASTROPHIC},
        "failed",
    ),
    (
        "json",
        {"source": "json_body", "property": "$.name", "comparison": "matches", "target": CATASTROPHIC},
        "failed",
    ),
    (
        "json",
        {
            "source": "json_body",
            "property": f'$.items[?(@.name =~ "{CATASTROPHIC}")].id',
            "comparison": "equals",
            "target": 2,
        },
        "passed",
    ),
    ("json", {"source": "json_schema", "comparison": "matches_schema", "target": SCHEMA_PATTERN}, "failed"),
    ("evil-key", {"source": "json_schema", "comparison": "matches_schema", "target": SCHEMA_KEYS}, "failed"),
]


def _run(url: str, assertions: list[dict[str, Any]]) -> RunCheck:
    now = datetime.now(UTC)
    return RunCheck(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=now.replace(microsecond=0),
        region="eu-north-1",
        spec=make_spec(url, assertions),
        expires_at=now + timedelta(seconds=30),
    )


@pytest.mark.parametrize(
    ("path", "assertion", "status"),
    EVIL_ASSERTIONS,
    ids=[a["source"] + f"-{a['comparison']}" for _, a, _ in EVIL_ASSERTIONS],
)
async def test_catastrophic_regex_ends_fast(
    stall_guard: None, evil_target: str, path: str, assertion: dict[str, Any], status: str
) -> None:
    checker = HttpChecker(region="eu-north-1")
    started = time.monotonic()
    try:
        result = await checker.run(make_spec(f"{evil_target}/{path}", [assertion]))
    finally:
        await checker.stop()
    assert time.monotonic() - started < 2.0
    assert result.status == status, result


async def test_other_checks_keep_their_schedule(
    stall_guard: None,
    runner_bus: tuple[MemoryBus, Tap],  # noqa: F811
    evil_target: str,
) -> None:
    """Every evil check runs alongside a plain check sent every 100 ms: each plain run is done within
    a second of being sent, as if the evil ones were not there."""
    bus, tap = runner_bus
    evil = [_run(f"{evil_target}/{path}", [assertion]) for path, assertion, _ in EVIL_ASSERTIONS]
    for command in evil:
        await bus.publish(command)
    sent: dict[uuid.UUID, datetime] = {}
    for _ in range(10):
        plain = _run(f"{evil_target}/ok", [{"source": "text_body", "comparison": "equals", "target": "ok"}])
        sent[plain.run_id] = datetime.now(UTC)
        await bus.publish(plain)
        await asyncio.sleep(0.1)
    lags: dict[uuid.UUID, float] = {}
    evil_done: dict[uuid.UUID, str] = {}
    async with asyncio.timeout(10):
        while len(lags) < len(sent) or len(evil_done) < len(evil):
            completed = await tap.next(CheckCompleted)
            if completed.run_id in sent:
                assert completed.status == "passed", completed.error
                lags[completed.run_id] = (completed.completed_at - sent[completed.run_id]).total_seconds()
            else:
                evil_done[completed.run_id] = completed.status
    assert max(lags.values()) < 1.0, sorted(lags.values())
    assert [evil_done[command.run_id] for command in evil] == [status for _, _, status in EVIL_ASSERTIONS]


UNSUPPORTED = [
    ({"source": "text_body", "comparison": "matches", "target": "(?=a)a"}, "target"),
    ({"source": "text_body", "comparison": "matches", "target": "(a)\\1"}, "target"),
    ({"source": "header", "property": "X-Evil", "comparison": "not_matches", "target": "(?<!b)a"}, "target"),
    (
        {"source": "json_body", "property": '$.items[?(@.name =~ "(?=a)")]', "comparison": "exists"},
        "property",
    ),
    ({"source": "json_body", "property": "$.name.`sub(/(?=a)/, x)`", "comparison": "exists"}, "property"),
    ({"source": "text_body", "comparison": "matches", "target": "a" * 1001}, "target"),
]
UNSUPPORTED.insert(
    5,
    (
        {
            "source": "json_schema",
            "comparison": "matches_schema",
            "target": {"properties": {"a": {"patternProperties": {"(?=x)": {}}}}},
        },
        "target",
    ),
)
UNSUPPORTED_IDS = [
    "lookahead",
    "backreference",
    "lookbehind",
    "jsonpath-filter",
    "jsonpath-sub",
    "json-schema",
    "too-long",
]


@pytest.mark.parametrize(("assertion", "field"), UNSUPPORTED, ids=UNSUPPORTED_IDS)
def test_saving_refuses_a_regex_the_engine_cannot_run(assertion: dict[str, Any], field: str) -> None:
    data = {
        "name": "t",
        "regions": ["local"],
        "request": {"url": "http://127.0.0.1/"},
        "assertions": [assertion],
    }
    with pytest.raises(ValueError, match=f"{field}.*(RE2|longer than)") as info:
        CheckSpec.model_validate(data, context=SAVING)
    assert info.value.errors()[0]["loc"] == ("assertions", 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("assertion", "field"), UNSUPPORTED[:6], ids=UNSUPPORTED_IDS[:6])
async def test_stored_unsupported_regex_ends_the_run_as_an_error_saying_why(
    evil_target: str, assertion: dict[str, Any], field: str
) -> None:
    """A check stored before the RE2 rule still loads; its run is an error naming the assertion, and
    no request is sent."""
    spec = make_spec(f"{evil_target}/text", [assertion])
    checker = HttpChecker(region="eu-north-1")
    try:
        result = await checker.run(spec)
    finally:
        await checker.stop()
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "assertion"
    assert result.error.message.startswith("assertion 1 (")
    assert "RE2" in result.error.message
    assert result.response is None


SAMPLES = ["x" * 8192, "token" * 1700, "-" * 8192, "x=" * 4096]


@pytest.mark.parametrize("body", SAMPLES, ids=["letters", "keywords", "dashes", "pairs"])
async def test_redacting_the_stored_sample_is_linear(stall_guard: None, body: str) -> None:
    """Every response sample is redacted on the runner's loop before it is stored; a body shaped to make
    that scan quadratic took ~5 s a run."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=body)

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    checker = HttpChecker(region="eu-north-1")
    try:
        started = time.monotonic()
        result = await checker.run(make_spec(f"http://127.0.0.1:{runner.addresses[0][1]}/"))
        elapsed = time.monotonic() - started
    finally:
        await checker.stop()
        await runner.cleanup()
    assert result.status == "passed"
    assert elapsed < 1.0


def _steps(url: str, pattern: str) -> dict[str, Any]:
    return {
        "name": "t",
        "regions": ["local"],
        "steps": [
            {
                "name": "first",
                "request": {"url": url},
                "extract": [{"name": "id", "source": "text_body", "property": pattern}],
            },
            {"name": "second", "request": {"url": url + "?id={{ steps.first.id }}"}},
        ],
    }


def test_saving_refuses_an_extraction_regex_the_engine_cannot_run() -> None:
    with pytest.raises(ValueError, match="property: regular expression not supported") as info:
        CheckSpec.model_validate(_steps("http://127.0.0.1/", "(?<=id=)\\d+"), context=SAVING)
    assert info.value.errors()[0]["loc"][:3] == ("steps", 0, "extract")  # type: ignore[attr-defined]


async def test_stored_extraction_regex_fails_the_step_saying_why(stall_guard: None, evil_target: str) -> None:
    spec = CheckSpec.model_validate(_steps(f"{evil_target}/text", "(?<=a)b"))
    checker = HttpChecker(region="eu-north-1")
    try:
        result = await checker.run(spec)
    finally:
        await checker.stop()
    assert result.status in ("failed", "error")
    assert result.error is not None
    assert "RE2" in result.error.message, result.error
