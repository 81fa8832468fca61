"""One run against real local servers: what a user sees for each way an endpoint can answer or fail."""

from __future__ import annotations

import json

import pytest

from services.common.netguard import AddressGuard
from services.runner.http_check import HttpChecker, user_agent
from services.runner.tests.support import MapResolver, make_spec

DEMO_ASSERTIONS = [
    {"source": "status_code", "comparison": "equals", "target": 201},
    {"source": "response_time", "comparison": "less_than", "target": 500},
    {"source": "header", "property": "Content-Type", "comparison": "contains", "target": "application/json"},
    {"source": "json_body", "property": "$.title", "comparison": "equals", "target": "Seymour demo"},
    {"source": "json_body", "property": "$.completed", "comparison": "equals", "target": False},
    {"source": "json_body", "property": "$.dueDate", "comparison": "is_null"},
    {"source": "json_body", "property": "$.id", "comparison": "exists"},
]


async def test_demo_check_passes(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/todos",
        DEMO_ASSERTIONS,
        request={"method": "POST", "body": {"title": "Seymour demo", "completed": False, "dueDate": None}},
    )
    result = await checker.run(check)
    assert result.status == "passed", result.error
    assert result.error is None
    assert [outcome.passed for outcome in result.assertions] == [True] * len(DEMO_ASSERTIONS)
    assert result.assertions[0].observed == 201
    assert result.assertions[4].observed is False
    assert result.response is not None
    assert result.response.status_code == 201
    assert result.response.headers["connection"] == "close"
    assert json.loads(result.response.body or "")["title"] == "Seymour demo"
    timings = result.timings
    assert timings.dns_ms is None  # an IP literal needs no lookup
    assert timings.tls_ms is None  # plain http
    for value in (timings.connect_ms, timings.ttfb_ms, timings.download_ms, timings.total_ms):
        assert value is not None
        assert value >= 0
    assert result.started_at <= result.completed_at


async def test_slow_target_fails_the_response_time_assertion(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/delay/600", [{"source": "response_time", "comparison": "less_than", "target": 500}]
    )
    result = await checker.run(check)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.cls == "assertion"
    observed = result.assertions[0].observed
    assert isinstance(observed, float)
    assert 600 <= observed < 2000
    assert result.error.message.startswith("response_time ")
    assert result.error.message.endswith(", expected less than 500 ms")


async def test_refused_port_is_a_connect_error(checker: HttpChecker, refused_port: int) -> None:
    result = await checker.run(make_spec(f"http://127.0.0.1:{refused_port}/"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "connect"
    assert "refused" in result.error.message.lower()
    assert result.response is None
    assert result.assertions == []


async def test_silent_port_times_out(checker: HttpChecker, silent_port: int) -> None:
    result = await checker.run(make_spec(f"http://127.0.0.1:{silent_port}/", timeout=0.3))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "timeout"
    assert "0.3 s" in result.error.message
    assert "waiting for the response" in result.error.message
    assert result.timings.total_ms is not None
    assert 290 <= result.timings.total_ms < 1500
    assert result.timings.connect_ms is not None  # it did connect


async def test_unresolvable_name_is_a_dns_error(checker: HttpChecker, resolver: MapResolver) -> None:
    # The checker fixture injects MapResolver: this machine's resolv.conf forwards to a nameserver off
    # the machine, and tests never send anything beyond 127.0.0.0/8, not even a DNS query for .invalid.
    result = await checker.run(make_spec("http://seymour-test.invalid/"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "dns"
    assert "seymour-test.invalid" in result.error.message
    assert resolver.asked == ["seymour-test.invalid"]
    assert result.timings.dns_ms is not None


async def test_resolved_name_has_a_dns_phase(checker: HttpChecker, target: str) -> None:
    port = target.rsplit(":", 1)[1]
    result = await checker.run(make_spec(f"http://target.test:{port}/status/200"))
    assert result.status == "passed"
    assert result.timings.dns_ms is not None
    assert result.timings.dns_ms >= 0


async def test_self_signed_certificate_is_a_tls_error(checker: HttpChecker, tls_target: str) -> None:
    result = await checker.run(make_spec(f"{tls_target}/status/200"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "tls"
    assert "certificate" in result.error.message.lower()


async def test_verify_tls_off_accepts_self_signed(checker: HttpChecker, tls_target: str) -> None:
    result = await checker.run(make_spec(f"{tls_target}/status/200", request={"verify_tls": False}))
    assert result.status == "passed"
    assert result.timings.tls_ms is not None


async def test_https_timings_split_connect_and_tls(trusting_checker: HttpChecker, tls_target: str) -> None:
    result = await trusting_checker.run(make_spec(f"{tls_target}/delay/0"))
    assert result.status == "passed", result.error
    timings = result.timings
    assert timings.connect_ms is not None
    assert timings.tls_ms is not None
    assert timings.tls_ms > 0
    assert timings.total_ms is not None
    assert timings.connect_ms + timings.tls_ms <= timings.total_ms


@pytest.mark.parametrize(
    ("hops", "max_redirects", "status", "error_class"),
    [
        pytest.param(3, 5, "passed", None, id="within-limit"),
        pytest.param(5, 5, "passed", None, id="exactly-at-limit"),
        pytest.param(6, 5, "error", "http_error", id="over-limit"),
        pytest.param(1, 0, "error", "http_error", id="zero-allows-none"),
    ],
)
async def test_redirect_chains(
    checker: HttpChecker, target: str, hops: int, max_redirects: int, status: str, error_class: str | None
) -> None:
    check = make_spec(
        f"{target}/redirect/{hops}",
        [{"source": "json_body", "property": "$.arrived", "comparison": "equals", "target": True}],
        request={"max_redirects": max_redirects},
    )
    result = await checker.run(check)
    assert result.status == status
    assert (result.error.cls if result.error else None) == error_class
    if error_class:
        assert result.error is not None
        assert f"more than {max_redirects} redirects" in result.error.message


async def test_redirects_not_followed_when_disabled(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/redirect/2",
        [{"source": "status_code", "comparison": "equals", "target": 302}],
        request={"follow_redirects": False},
    )
    result = await checker.run(check)
    assert result.status == "passed"
    assert result.response is not None
    assert result.response.headers["location"] == "/redirect/1"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_cap(checker: HttpChecker, target: str, chunked: bool) -> None:
    url = f"{target}/big/{2 * 1024 * 1024}" + ("?chunked=1" if chunked else "")
    status_200 = [{"source": "status_code", "comparison": "equals", "target": 200}]
    status_only = await checker.run(make_spec(url, status_200))
    assert status_only.status == "passed"
    assert status_only.response is not None
    assert status_only.response.truncated
    assert status_only.response.size == 1024 * 1024
    json_needed = await checker.run(
        make_spec(url, [{"source": "json_body", "property": "$.pad", "comparison": "exists"}])
    )
    assert json_needed.status == "error"
    assert json_needed.error is not None
    assert json_needed.error.cls == "too_large"
    assert json_needed.assertions[0].passed is False
    assert "truncated" in (json_needed.assertions[0].message or "")


async def test_body_under_the_cap_is_whole(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/big/5000", [{"source": "json_body", "property": "$.pad", "comparison": "is_not_empty"}]
    )
    result = await checker.run(check)
    assert result.status == "passed"
    assert result.response is not None
    assert result.response.size == 5000
    assert not result.response.truncated


@pytest.mark.parametrize(
    ("host", "guard", "error_class"),
    [
        pytest.param("metadata.test", AddressGuard(["169.254.0.0/16"]), "blocked", id="name-to-metadata"),
        pytest.param("169.254.169.254", AddressGuard(["169.254.0.0/16"]), "blocked", id="ip-literal"),
        pytest.param("[::ffff:169.254.169.254]", AddressGuard(["169.254.0.0/16"]), "blocked", id="v4-mapped"),
    ],
)
async def test_blocked_addresses_are_refused_without_connecting(
    resolver: MapResolver, host: str, guard: AddressGuard, error_class: str
) -> None:
    checker = HttpChecker(region="eu-north-1", resolver=resolver, guard=guard)
    await checker.start()
    try:
        result = await checker.run(make_spec(f"http://{host}/latest/meta-data/"))
    finally:
        await checker.stop()
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == error_class
    assert "169.254.0.0/16" in result.error.message
    assert result.timings.connect_ms is None  # no socket was ever connected


async def test_redirect_to_a_blocked_address_is_refused(checker: HttpChecker, target: str) -> None:
    check = make_spec(f"{target}/redirect-to?url=http://169.254.169.254/latest/meta-data/")
    result = await checker.run(check)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "blocked"


@pytest.mark.parametrize(
    ("blocked", "allowed", "error_class"),
    [
        pytest.param(["127.0.0.0/8"], [], "blocked", id="loopback-blocked"),
        pytest.param(["127.0.0.0/8"], ["127.0.0.1/32"], None, id="narrower-allow-wins"),
        pytest.param(["127.0.0.1/32"], ["127.0.0.0/8"], "blocked", id="narrower-block-wins"),
        pytest.param(["127.0.0.0/8"], ["127.0.0.0/8"], None, id="tie-goes-to-allow"),
        pytest.param([], [], None, id="nothing-blocked"),
    ],
)
async def test_guard_networks_decide(
    target: str, blocked: list[str], allowed: list[str], error_class: str | None
) -> None:
    checker = HttpChecker(region="eu-north-1", guard=AddressGuard(blocked, allowed))
    await checker.start()
    try:
        result = await checker.run(make_spec(f"{target}/status/200"))
    finally:
        await checker.stop()
    assert (result.error.cls if result.error else None) == error_class


async def test_garbage_response_is_an_http_error(checker: HttpChecker, garbage_port: int) -> None:
    result = await checker.run(make_spec(f"http://127.0.0.1:{garbage_port}/"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "http_error"


async def test_known_delay_shows_in_ttfb(checker: HttpChecker, target: str) -> None:
    result = await checker.run(make_spec(f"{target}/delay/50"))
    assert result.status == "passed"
    timings = result.timings
    assert timings.ttfb_ms is not None
    assert timings.total_ms is not None
    assert 49 <= timings.ttfb_ms < 150  # loopback: the 50 ms sleep plus scheduling noise
    assert timings.ttfb_ms <= timings.total_ms < timings.ttfb_ms + 60
    assert timings.connect_ms is not None
    assert timings.connect_ms < 50


async def test_request_headers_and_body_as_sent(checker: HttpChecker, target: str) -> None:
    sent_as = [
        ("$.headers.Authorization", "Bearer s3cret"),
        ("$.headers.X-Tenant", "tenant-1"),
        ("$.body", '{"name":"a","password":"hunter2"}'),
    ]
    check = make_spec(
        f"{target}/echo",
        [
            {"source": "json_body", "property": path, "comparison": "equals", "target": value}
            for path, value in sent_as
        ],
        request={
            "method": "POST",
            "headers": {
                "Authorization": "Bearer s3cret",
                "X-Api-Key": "k",
                "X-Trace": "t1",
                "X-Tenant": "tenant-1",
            },
            "secret_headers": ["X-Tenant"],
            "body": {"name": "a", "password": "hunter2"},
        },
    )
    result = await checker.run(check)
    assert result.status == "passed", result.assertions
    assert result.response is not None
    echoed = json.loads(result.response.body or "")
    assert echoed["headers"]["User-Agent"] == user_agent("eu-north-1")
    assert echoed["headers"]["User-Agent"].startswith("Seymour/")
    assert echoed["headers"]["Content-Type"] == "application/json"
    for secret in ("s3cret", "hunter2"):
        assert secret not in (result.response.body or ""), "the stored sample shows what the endpoint echoed"
    sent = result.request
    assert sent["method"] == "POST"
    assert sent["headers"]["Authorization"] == "********"
    assert sent["headers"]["X-Api-Key"] == "********"
    assert sent["headers"]["X-Tenant"] == "********"
    assert sent["headers"]["X-Trace"] == "t1"
    assert sent["headers"]["User-Agent"] == user_agent("eu-north-1")
    assert sent["body"] == {"name": "a", "password": "********"}


async def test_set_cookie_and_tokens_in_the_response_are_not_stored(
    checker: HttpChecker, target: str
) -> None:
    check = make_spec(f"{target}/login-like")
    result = await checker.run(check)
    assert result.response is not None
    assert result.response.headers["set-cookie"] == "********"
    assert "tok-abcdef-123" not in (result.response.body or "")
    assert '"expires_in": 3600' in (result.response.body or "")


async def test_own_user_agent_and_text_body(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/echo?token=abc&page=2",
        request={"method": "PUT", "headers": {"user-agent": "mine/1.0"}, "body": "plain words"},
    )
    result = await checker.run(check)
    assert result.response is not None
    echoed = json.loads(result.response.body or "")
    assert echoed["headers"]["User-Agent"] == "mine/1.0"
    assert echoed["body"] == "plain words"
    assert echoed["headers"]["Content-Type"].startswith("text/plain")
    assert result.request["url"].endswith("/echo?token=********&page=2")


async def test_degraded_when_slower_than_the_policy(checker: HttpChecker, target: str) -> None:
    slow = await checker.run(make_spec(f"{target}/delay/50", alert_policy={"degraded_response_time": 10}))
    fast = await checker.run(make_spec(f"{target}/delay/0", alert_policy={"degraded_response_time": 1000}))
    assert (slow.status, slow.degraded) == ("passed", True)
    assert (fast.status, fast.degraded) == ("passed", False)


@pytest.mark.parametrize(
    ("code", "status"),
    [pytest.param(200, "passed", id="200"), pytest.param(503, "failed", id="503")],
)
async def test_no_assertions_means_status_below_400(
    checker: HttpChecker, target: str, code: int, status: str
) -> None:
    result = await checker.run(make_spec(f"{target}/status/{code}"))
    assert result.status == status
    assert result.assertions[0].observed == code
    if status == "failed":
        assert result.error is not None
        assert result.error.message == "status_code 503, expected less than 400"


async def test_head_request_has_no_body(checker: HttpChecker, target: str) -> None:
    result = await checker.run(make_spec(f"{target}/echo", request={"method": "HEAD"}))
    assert result.status == "passed"
    assert result.response is not None
    assert result.response.body is None


async def test_first_run_opens_the_session_and_stop_closes_it(target: str) -> None:
    checker = HttpChecker(region="local")
    result = await checker.run(make_spec(f"{target}/status/200"))
    assert result.status == "passed"
    await checker.stop()
    with pytest.raises(RuntimeError, match="after stop"):
        await checker.run(make_spec(f"{target}/status/200"))


async def test_cap_applies_to_the_decompressed_body(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/gzip/{3 * 1024 * 1024}", [{"source": "text_body", "comparison": "contains", "target": "x"}]
    )
    result = await checker.run(check)
    assert result.status == "passed"
    assert result.response is not None
    assert result.response.truncated
    assert result.response.size == 1024 * 1024
