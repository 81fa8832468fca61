"""JUnit XML of a run set: one test case per check × region, so CI systems show each one.

Failed assertions become ``<failure>`` with target and observed value; a run that could not complete
(error, missed, still pending at the deadline) becomes ``<error>``; a check that does not run in any
chosen region is ``<skipped>``.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def describe(outcome: dict[str, Any]) -> str:
    """One failed assertion as a line: ``status_code equals 201: observed 503``; in a multi-step check
    led by its step (``step 'login': status_code equals 200: observed 401``)."""
    subject = outcome["source"] + (f" {outcome['property']}" if outcome.get("property") else "")
    target = "" if outcome.get("target") is None else f" {_value(outcome['target'])}"
    message = outcome.get("message") or ""
    step = message.split(":", 1)[0] + ": " if message.startswith("step '") else ""
    return f"{step}{subject} {outcome['comparison']}{target}: observed {_value(outcome.get('observed'))}"


def _case(entry: dict[str, Any]) -> ET.Element:
    run = entry.get("run") or {}
    total = (run.get("timings") or {}).get("total_ms")
    case = ET.Element(
        "testcase",
        {
            "classname": f"seymour.{entry['check']}",
            "name": f"{entry['check']} [{entry['region']}]",
            "time": f"{(total or 0) / 1000:.3f}",
        },
    )
    status = entry["status"]
    if status == "failed":
        failed = [outcome for outcome in run.get("assertions") or [] if not outcome.get("passed")]
        lines = [describe(outcome) for outcome in failed] or [
            (run.get("error") or {}).get("message") or "the run failed"
        ]
        failure = ET.SubElement(case, "failure", {"message": lines[0], "type": "assertion"})
        failure.text = "\n".join(lines)
    elif status != "passed":
        error = run.get("error") or {}
        kind = error.get("class") or status
        message = error.get("message") or {
            "pending": "no result before the deadline",
            "missed": "the run could not start in time (no runner took it)",
        }.get(status, status)
        node = ET.SubElement(case, "error", {"message": f"{kind}: {message}", "type": kind})
        node.text = f"{kind}: {message}"
    if run.get("run_id"):
        out = ET.SubElement(case, "system-out")
        out.text = f"run {run['run_id']} status {status}"
    return case


def junit_xml(report: dict[str, Any]) -> str:
    """The JUnit XML document of a run set report (``GET /api/v1/run-sets/{id}``)."""
    runs = report.get("runs", [])
    cases = [_case(entry) for entry in runs]
    for skipped in report.get("skipped", []):
        case = ET.Element(
            "testcase",
            {"classname": f"seymour.{skipped['check']}", "name": f"{skipped['check']} [-]", "time": "0"},
        )
        ET.SubElement(case, "skipped", {"message": "runs in none of the chosen regions"})
        cases.append(case)
    failures = sum(1 for entry in runs if entry["status"] == "failed")
    errors = sum(1 for entry in runs if entry["status"] not in ("passed", "failed"))
    seconds = sum(float(case.get("time", "0")) for case in cases)
    attrs = {
        "name": f"seymour tag {report.get('tag', '')}",
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(len(report.get("skipped", []))),
        "time": f"{seconds:.3f}",
    }
    suites = ET.Element("testsuites", {k: v for k, v in attrs.items() if k != "skipped"})
    suite = ET.SubElement(suites, "testsuite", {**attrs, "timestamp": report.get("created_at", "")})
    suite.extend(cases)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
