"""JUnit XML of a run set, read back with a standard JUnit parser as a CI system would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from services.cli.checks import exit_code
from services.cli.junit import junit_xml


def entry(check: str, region: str, status: str, **run: Any) -> dict[str, Any]:
    body = {"run_id": f"{check}-{region}", "timings": {"total_ms": 120.0}, "assertions": [], **run}
    return {
        "check": check,
        "region": region,
        "status": status,
        "run_id": body["run_id"],
        "run": None if status == "pending" else body,
    }


FAILED = {
    "source": "status_code",
    "property": None,
    "comparison": "equals",
    "target": 201,
    "observed": 503,
    "passed": False,
}
PASSED = {**FAILED, "observed": 201, "passed": True}
REPORT = {
    "id": "set-1",
    "tag": "deploy-smoke",
    "created_at": "2026-12-01T01:00:00Z",
    "runs": [
        entry("cards", "us-east-1", "passed", assertions=[PASSED]),
        entry("cards", "eu-north-1", "failed", assertions=[PASSED, FAILED]),
        entry("login", "us-east-1", "error", error={"class": "timeout", "message": "no answer in 10 s"}),
        entry("login", "eu-north-1", "missed"),
        entry("search", "us-east-1", "pending"),
        entry(
            "checkout-flow",
            "us-east-1",
            "failed",
            assertions=[
                {
                    **FAILED,
                    "target": 200,
                    "observed": 401,
                    "message": "step 'login': status 401, expected 200",
                }
            ],
        ),
    ],
    "skipped": [{"check": "billing", "regions": ["ap-south-1"]}],
}


def test_one_case_per_check_and_region_with_target_and_observed(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    path.write_text(junit_xml(REPORT))
    suites = list(JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (7, 2, 3, 1)
    results = {case.name: case.result for case in suite}
    assert results["cards [us-east-1]"] == []
    failure = results["cards [eu-north-1]"][0]
    assert isinstance(failure, Failure)
    assert failure.message == "status_code equals 201: observed 503"
    error = results["login [us-east-1]"][0]
    assert isinstance(error, Error)
    assert error.message == "timeout: no answer in 10 s"
    assert "could not start in time" in results["login [eu-north-1]"][0].message
    assert "no result before the deadline" in results["search [us-east-1]"][0].message
    assert isinstance(results["billing [-]"][0], Skipped)
    step = results["checkout-flow [us-east-1]"][0]
    assert step.message == "step 'login': status_code equals 200: observed 401"
    assert next(case for case in suite if case.name == "cards [us-east-1]").time == pytest.approx(0.12)


CODES = [
    ({"passed"}, False, 0),
    ({"passed", "failed"}, False, 1),
    ({"passed", "error"}, False, 2),
    ({"failed", "missed"}, False, 1),
    ({"passed"}, True, 2),
    ({"failed"}, True, 1),
]


@pytest.mark.parametrize(
    ("statuses", "pending", "code"),
    CODES,
    ids=["all-passed", "a-failure", "an-error", "failure-beats-miss", "pending", "failure-beats-pending"],
)
def test_exit_codes(statuses: set[str], pending: bool, code: int) -> None:
    assert exit_code(statuses, pending) == code
