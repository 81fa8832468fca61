"""``seymour apply``, ``seymour export`` and ``seymour run``: checks as code, and a CI gate."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from services.cli.client import ApiClient, ApiFailure, api_location


def register(subparsers: Any) -> None:
    """Add ``apply``, ``export`` and ``run``."""
    for name, helptext, func in (
        ("apply", "create or update checks by name from YAML/JSON", _apply),
        ("export", "print every check as YAML (secrets masked)", _export),
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
        if name == "run":
            sub.add_argument("check", help="check name or id")
            sub.add_argument("--wait", action="store_true", help="wait for the results (default)")
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


async def _all_checks(client: ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await client.call("GET", "/api/v1/checks", params={"limit": "1000", "offset": str(offset)})
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


def _export(args: argparse.Namespace) -> int:
    try:
        checks = asyncio.run(_all_checks(_client(args)))
    except ApiFailure as failure:
        _print_failure("export", failure)
        return 2
    documents = [
        {k: v for k, v in c.items() if k not in ("id", "revision", "created_at", "updated_at")}
        for c in checks
    ]
    if args.json:
        print(json.dumps({"checks": documents}, indent=2))
    else:
        print(yaml.safe_dump({"checks": documents}, sort_keys=False, allow_unicode=True), end="")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run_check(_client(args), args.check))
    except ApiFailure as failure:
        _print_failure(args.check, failure)
        return 2


async def _run_check(client: ApiClient, name: str) -> int:
    check = next((c for c in await _all_checks(client) if name in (c["name"], c["id"])), None)
    if check is None:
        print(f"error: no check named {name!r}", file=sys.stderr)
        return 2
    client.timeout = float(check.get("timeout", 10)) + 30
    result = await client.call("POST", f"/api/v1/checks/{check['id']}/runs", params={"wait": "true"})
    print(render_runs(check["name"], result.get("runs", []), result.get("pending", [])))
    statuses = {run["status"] for run in result.get("runs", [])}
    if result.get("pending") or statuses & {"error", "missed"}:
        return 2 if not statuses & {"failed"} else 1
    return 1 if "failed" in statuses else 0


def render_runs(name: str, runs: list[dict[str, Any]], pending: list[str]) -> str:
    """Each region's assertion table, as ``seymour run`` prints it."""
    lines = [f"check {name}"]
    for run in runs:
        total = run.get("timings", {}).get("total_ms")
        took = f"{total:.1f} ms" if isinstance(total, int | float) else "-"
        lines.append(f"\n[{run['region']}] {run['status'].upper()}  {took}")
        if run.get("error") and run["status"] != "failed":
            lines.append(f"  error: {run['error']['class']}: {run['error']['message']}")
        rows = [("", "source", "property", "comparison", "target", "observed")]
        for outcome in run.get("assertions", []):
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
        if len(rows) > 1:
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            for row in rows:
                lines.append(
                    "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                )
    for run_id in pending:
        lines.append(f"\n[pending] run {run_id} did not finish in time")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."
