"""The TLS certificate source: read from the certificate a server actually presents, asserted on."""

from __future__ import annotations

from typing import Any

import pytest

from services.runner.certificate import describe
from services.runner.http_check import HttpChecker
from services.runner.tests.support import make_spec
from tests.support.tls import certificate_der


async def test_every_https_run_records_the_presented_certificate(
    trusting_checker: HttpChecker, tls_target: str
) -> None:
    check = make_spec(
        f"{tls_target}/status/200",
        [
            {
                "source": "tls_certificate",
                "property": "hostname_match",
                "comparison": "equals",
                "target": True,
            },
            {"source": "tls_certificate", "property": "san", "comparison": "contains", "target": "localhost"},
            {
                "source": "tls_certificate",
                "property": "days_until_expiry",
                "comparison": "greater_than",
                "target": 14,
            },
            {"source": "phase_time", "property": "tls", "comparison": "greater_than", "target": 0},
        ],
    )
    result = await trusting_checker.run(check)

    certificate = result.certificate
    assert certificate is not None
    assert certificate.subject == "CN=localhost"
    assert certificate.san == ["localhost", "127.0.0.1"]
    assert certificate.days_until_expiry == 0  # the test certificate lives one day
    assert [outcome.passed for outcome in result.assertions] == [True, True, False, True]
    assert result.assertions[2].observed == 0
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.message.startswith("tls_certificate days_until_expiry 0, expected greater than 14")


async def test_certificate_is_recorded_when_verification_is_off(
    checker: HttpChecker, tls_target: str
) -> None:
    result = await checker.run(make_spec(f"{tls_target}/status/200", request={"verify_tls": False}))
    assert result.certificate is not None
    assert result.certificate.issuer == "CN=localhost"


async def test_a_rejected_certificate_is_still_recorded(checker: HttpChecker, tls_target: str) -> None:
    result = await checker.run(make_spec(f"{tls_target}/status/200"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "tls"
    assert result.certificate is not None, "what the server presented, read after verification failed"
    assert result.certificate.subject == "CN=localhost"
    assert result.certificate.days_until_expiry == 0


async def test_plain_http_has_no_certificate(checker: HttpChecker, target: str) -> None:
    check = make_spec(
        f"{target}/status/200",
        [
            {
                "source": "tls_certificate",
                "property": "days_until_expiry",
                "comparison": "greater_than",
                "target": 1,
            }
        ],
    )
    result = await checker.run(check)
    assert result.certificate is None
    assert result.status == "failed"
    assert result.error is not None
    assert "no TLS certificate" in result.error.message


@pytest.mark.parametrize(
    ("host", "options", "days", "match"),
    [
        pytest.param("api.example.test", {"dns_names": ("api.example.test",)}, 90, True, id="exact"),
        pytest.param("API.Example.Test.", {"dns_names": ("api.example.test",)}, 90, True, id="case-and-dot"),
        pytest.param("a.example.test", {"dns_names": ("*.example.test",)}, 90, True, id="wildcard"),
        pytest.param(
            "a.b.example.test", {"dns_names": ("*.example.test",)}, 90, False, id="wildcard-one-label"
        ),
        pytest.param("example.test", {"dns_names": ("*.example.test",)}, 90, False, id="wildcard-not-apex"),
        pytest.param("other.test", {"dns_names": ("api.example.test",)}, 90, False, id="mismatch"),
        pytest.param("10.0.0.1", {"addresses": ("10.0.0.1",)}, 90, True, id="ip"),
        pytest.param(
            "cn.test", {"common_name": "cn.test", "dns_names": (), "addresses": ()}, 90, True, id="cn-only"
        ),
        pytest.param(
            "cn.test", {"common_name": "cn.test", "dns_names": ("x.test",)}, 90, False, id="cn-ignored"
        ),
        pytest.param("api.example.test", {"dns_names": ("api.example.test",)}, -3, True, id="expired"),
    ],
)
def test_describe(host: str, options: dict[str, Any], days: int, match: bool) -> None:
    info = describe(certificate_der(issuer="Test CA", valid_days=days, **{"addresses": (), **options}), host)
    assert info.hostname_match is match
    assert info.days_until_expiry in (days - 1, days)
    assert info.issuer == "CN=Test CA"
