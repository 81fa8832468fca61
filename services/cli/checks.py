"""``seymour apply``, ``export``, ``list``, ``pause``, ``resume``, ``run``: checks as code, and a CI gate."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from services.cli.client import ApiClient, ApiFailure, api_location
from services.cli.junit import junit_xml


def register(subparsers: Any) -> None:
    """Add ``apply``, ``export``, ``list``, ``pause``, ``resume`` and ``run``."""
    for name, helptext, func in (
        ("apply", "create or update checks by name from YAML/JSON", _apply),
        ("export", "print every check as YAML (secrets masked)", _export),
        ("list", "list checks: name, state, regions, tags", _list),
        ("pause", "pause every check with a tag", _pause),
        ("resume", "resume every check with a tag", _resume),
        (
            "run",
            "run a check now and print each region's assertions (exit 0 passed, 1 failed, 2 error)",
            _run,
        ),
    ):
        sub = subparsers.add_parser(name, help=helptext)
        sub.add_argument("--url", default=None, help="Seymour's URL (default SEYMOUR_URL or the local one)")
        sub.add_argument(
            "--token", default=None, help="API token (default SEYMOUR_API_TOKEN or the local one)"
        )
        if name == "apply":
            sub.add_argument("-f", "--file", required=True, type=Path, help="YAML or JSON; '-' for stdin")
        if name == "export":
            sub.add_argument("--json", action="store_true", help="JSON instead of YAML")
        if name in ("export", "list"):
            sub.add_argument("--tag", default=None, help="only checks with this tag")
        if name in ("pause", "resume"):
            sub.add_argument("--tag", required=True, help="every check with this tag")
        if name == "run":
            sub.add_argument("check", nargs="?", default=None, help="check name or id (or use --tag)")
            sub.add_argument("--tag", default=None, help="run every check with this tag (a CI gate)")
            sub.add_argument("--wait", action="store_true", help="wait for the results (default)")
            sub.add_argument(
                "--regions", default=None, help="with --tag: only these regions (comma-separated codes)"
            )
            sub.add_argument(
                "--timeout",
                type=float,
                default=None,
                help="with --tag: seconds to wait for every result (default: longest check timeout + 30)",
            )
            sub.add_argument("--junit", type=Path, default=None, help="with --tag: write JUnit XML here")
        sub.set_defaults(func=func)


def load_documents(text: str) -> list[dict[str, Any]]:
    """Checks from a YAML/JSON text: one document, several (``---``), a list, or ``{checks: [...]}``."""
    out: list[dict[str, Any]] = []
    for document in yaml.safe_load_all(text):
        if document is None:
            continue
        if isinstance(document, dict) and isinstance(document.get("checks"), list):
            out.extend(document["checks"])
        elif isinstance(document, list):
            out.extend(document)
        else:
            out.append(document)
    return out


def _client(args: argparse.Namespace) -> ApiClient:
    base, token = api_location(args.url, args.token)
    return ApiClient(base, token)


def _apply(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
    try:
        documents = load_documents(text)
    except yaml.YAMLError as exc:
        print(f"error: {args.file} is not valid YAML: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_apply_all(_client(args), documents))


async def _apply_all(client: ApiClient, documents: list[dict[str, Any]]) -> int:
    existing = {item["name"]: item for item in await _all_checks(client)}
    failed = False
    for document in documents:
        name = document.get("name") if isinstance(document, dict) else None
        try:
            if name in existing:
                await client.call("PUT", f"/api/v1/checks/{existing[name]['id']}", document)
                print(f"updated {name}")
            else:
                created = await client.call("POST", "/api/v1/checks", document)
                print(f"created {created['name']}")
        except ApiFailure as failure:
            failed = True
            _print_failure(name or "<unnamed>", failure)
    return 1 if failed else 0


def _print_failure(name: str, failure: ApiFailure) -> None:
    body = failure.body if isinstance(failure.body, dict) else {"detail": failure.body}
    print(f"error: {name}: {body.get('detail')}", file=sys.stderr)
    for error in body.get("errors") or []:
        print(f"  {error['field']}: {error['message']}", file=sys.stderr)


async def _all_checks(client: ApiClient, tag: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        params = {"limit": "1000", "offset": str(offset), **({"tag": tag} if tag else {})}
        page = await client.call("GET", "/api/v1/checks", params=params)
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


def _export(args: argparse.Namespace) -> int:
    try:
        checks = asyncio.run(_all_checks(_client(args), args.tag))
    except ApiFailure as failure:
        _print_failure("export", failure)
        return 2
    documents = [export_document(check) for check in checks]
    if args.json:
        print(json.dumps({"checks": documents}, indent=2))
    else:
        print(yaml.safe_dump({"checks": documents}, sort_keys=False, allow_unicode=True), end="")
    return 0


def export_document(check: dict[str, Any]) -> dict[str, Any]:
    """A check as ``seymour export`` writes it: no bookkeeping; a multi-step check as its steps only
    (``request``/``assertions`` repeat the first step and ``apply`` fills them back in)."""
    document = {k: v for k, v in check.items() if k not in ("id", "revision", "created_at", "updated_at")}
    if document.get("steps"):
        document.pop("request", None)
        document.pop("assertions", None)
    return document


def _list(args: argparse.Namespace) -> int:
    try:
        checks = asyncio.run(_all_checks(_client(args), args.tag))
    except ApiFailure as failure:
        _print_failure("list", failure)
        return 2
    print(render_list(checks))
    return 0


def render_list(checks: list[dict[str, Any]]) -> str:
    """One line per check: name, active/paused, regions, tags (as ``seymour list`` prints them)."""
    rows = [("NAME", "STATE", "REGIONS", "TAGS")]
    for check in checks:
        rows.append(
            (
                check["name"],
                "active" if check.get("enabled", True) else "paused",
                ",".join(check.get("regions", [])),
                ",".join(check.get("tags", [])) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _pause(args: argparse.Namespace) -> int:
    return _bulk(args, "pause")


def _resume(args: argparse.Namespace) -> int:
    return _bulk(args, "resume")


def _bulk(args: argparse.Namespace, action: str) -> int:
    try:
        result = asyncio.run(_client(args).call("POST", f"/api/v1/checks/{action}", params={"tag": args.tag}))
    except ApiFailure as failure:
        _print_failure(action, failure)
        return 2
    changed = result[f"{action}d"]
    print(f"{action}d {len(changed)} check{'' if len(changed) == 1 else 's'} tagged {args.tag}")
    for item in changed:
        print(f"  {item['name']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if (args.check is None) == (args.tag is None):
        print("error: name one check, or give --tag", file=sys.stderr)
        return 2
    try:
        if args.tag is not None:
            regions = [r.strip() for r in args.regions.split(",") if r.strip()] if args.regions else None
            code, report = asyncio.run(_run_tag(_client(args), args.tag, regions, args.timeout))
            if args.junit is not None:
                args.junit.write_text(junit_xml(report))
            return code
        return asyncio.run(_run_check(_client(args), args.check))
    except ApiFailure as failure:
        _print_failure(args.check or args.tag, failure)
        return 2


def exit_code(statuses: set[str], pending: bool) -> int:
    """0 when every run passed, 1 when any failed, 2 when any could not complete and none failed."""
    if pending or statuses & {"error", "missed"}:
        return 2 if not statuses & {"failed"} else 1
    return 1 if "failed" in statuses else 0


async def _run_tag(
    client: ApiClient, tag: str, regions: list[str] | None, wait_s: float | None
) -> tuple[int, dict[str, Any]]:
    """Start a run set for ``tag``, poll it until done or ``wait_s`` pass, print it; exit code and report."""
    body: dict[str, Any] = {"tag": tag, **({"regions": regions} if regions else {})}
    report = await client.call("POST", "/api/v1/run-sets", body)
    longest = max((float(item.get("timeout", 10)) for item in report["runs"]), default=10.0)
    deadline = time.monotonic() + (wait_s if wait_s is not None else longest + 30)
    delay = 0.2
    print(f"run set {report['id']}: {len(report['runs'])} runs of checks tagged {tag}", file=sys.stderr)
    while report["state"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 2.0)
        report = await client.call("GET", f"/api/v1/run-sets/{report['id']}")
    by_check: dict[str, list[dict[str, Any]]] = {}
    for entry in report["runs"]:
        by_check.setdefault(entry["check"], []).append(entry)
    for name, entries in by_check.items():
        runs = [entry["run"] for entry in entries if entry["run"]]
        pending = [entry["run_id"] for entry in entries if not entry["run"]]
        print(render_runs(name, runs, pending) + "\n")
    for skipped in report.get("skipped", []):
        print(f"check {skipped['check']}: skipped (runs only in {', '.join(skipped['regions'])})\n")
    statuses = {entry["status"] for entry in report["runs"]} - {"pending"}
    code = exit_code(statuses, report["pending"] > 0)
    state = "timed out" if report["state"] == "running" else report["state"]
    print(f"{state.upper()}: {_tally(report)}")
    return code, report


def _tally(report: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for entry in report["runs"]:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


async def _run_check(client: ApiClient, name: str) -> int:
    check = next((c for c in await _all_checks(client) if name in (c["name"], c["id"])), None)
    if check is None:
        print(f"error: no check named {name!r}", file=sys.stderr)
        return 2
    client.timeout = float(check.get("timeout", 10)) + 30
    result = await client.call("POST", f"/api/v1/checks/{check['id']}/runs", params={"wait": "true"})
    print(render_runs(check["name"], result.get("runs", []), result.get("pending", [])))
    statuses = {run["status"] for run in result.get("runs", [])}
    return exit_code(statuses, bool(result.get("pending")))


def render_runs(name: str, runs: list[dict[str, Any]], pending: list[str]) -> str:
    """Each region's assertion table, as ``seymour run`` prints it."""
    lines = [f"check {name}"]
    for run in runs:
        total = run.get("timings", {}).get("total_ms")
        took = f"{total:.1f} ms" if isinstance(total, int | float) else "-"
        lines.append(f"\n[{run['region']}] {run['status'].upper()}  {took}")
        if run.get("error") and (run["status"] != "failed" or run.get("steps")):
            lines.append(f"  error: {run['error']['class']}: {run['error']['message']}")
        if run.get("steps"):
            for step in run["steps"]:
                lines.extend(_step_lines(step))
        else:
            lines.extend(_assertion_table(run.get("assertions", []), "  "))
    for run_id in pending:
        lines.append(f"\n[pending] run {run_id} did not finish in time")
    return "\n".join(lines)


def _step_lines(step: dict[str, Any]) -> list[str]:
    """One step of a multi-step run: status, time, request, its error and its assertion table."""
    total = (step.get("timings") or {}).get("total_ms")
    took = f"{total:.1f} ms" if isinstance(total, int | float) else "-"
    label = f"teardown {step['name']}" if step.get("teardown") else f"step {step['name']}"
    request = step.get("request") or {}
    sent = f"{request.get('method', '')} {request.get('url', '')}".strip()
    lines = [f"  {label}: {step['status'].upper()}  {took}  {sent}".rstrip()]
    if step.get("error") and step["status"] != "skipped":
        lines.append(f"    error: {step['error']['class']}: {step['error']['message']}")
    lines.extend(_assertion_table(step.get("assertions", []), "    "))
    for name, value in (step.get("extracted") or {}).items():
        lines.append(f"    extracted steps.{step['name']}.{name} = {_show(value)}")
    return lines


def _assertion_table(outcomes: list[dict[str, Any]], indent: str) -> list[str]:
    rows = [("", "source", "property", "comparison", "target", "observed")]
    for outcome in outcomes:
        rows.append(
            (
                "PASS" if outcome["passed"] else "FAIL",
                outcome["source"],
                outcome.get("property") or "",
                outcome["comparison"],
                _show(outcome.get("target")),
                _show(outcome.get("observed")),
            )
        )
    if len(rows) == 1:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    ]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."
