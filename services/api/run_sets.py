"""Tag-wide runs for CI gates: run every check with a tag from its regions now, and report on them.

A run set is stored (``run_sets``) so any api process can answer a poll for it, and so a CI job that
lost its connection can ask again with the id it was given.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from contracts.v1 import CheckDue, CheckSpec, run_id_for
from contracts.v1.regions import REGIONS
from services.api.checks import CheckStore, manual_slot
from services.api.queries import run_view
from services.common.db.models import Run, RunSet
from services.common.db.sessions import Sessions
from services.common.errors import Invalid, NotFound

log = logging.getLogger(__name__)

#: Run statuses that end a run; anything else in a set is still pending.
PASSED = "passed"


def parse_request(data: Any) -> tuple[str, list[str] | None]:
    """``{"tag": ..., "regions": [...]?}`` → (tag, regions or ``None`` for each check's own); 422s."""
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", [{"field": "body", "message": "expected an object"}])
    tag = data.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        raise Invalid("say which checks to run: tag", [{"field": "tag", "message": "required"}])
    regions = data.get("regions")
    if regions is None:
        return tag.strip(), None
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) for r in regions):
        raise Invalid(
            "regions must be a non-empty list of region codes",
            [{"field": "regions", "message": "invalid"}],
        )
    unknown = [region for region in regions if region not in REGIONS]
    if unknown:
        raise Invalid(
            f"unknown region(s): {', '.join(unknown)}",
            [{"field": "regions", "message": f"unknown: {', '.join(unknown)}"}],
        )
    return tag.strip(), list(dict.fromkeys(regions))


async def start(store: CheckStore, tag: str, regions: Sequence[str] | None) -> RunSet:
    """Run every check tagged ``tag`` now, from each of its regions (narrowed to ``regions`` when
    given), and store the set. 422 when no check has the tag or none runs in the chosen regions, so a
    CI gate never passes by running nothing."""
    checks = await store.tagged(tag)
    if not checks:
        raise Invalid(f"no check is tagged '{tag}'", [{"field": "tag", "message": "no check has it"}])
    slot = manual_slot()
    items: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    dues: list[CheckDue] = []
    for row in checks:
        spec = CheckSpec.model_validate(row.spec)
        chosen = [r for r in spec.regions if regions is None or r in regions]
        if not chosen:
            skipped.append({"check_id": str(row.id), "check": row.name, "regions": list(spec.regions)})
            continue
        dues.append(
            CheckDue(
                check_id=row.id, slot=slot, revision=row.revision, spec=spec, trigger="manual", regions=chosen
            )
        )
        items.extend(
            {
                "check_id": str(row.id),
                "check": row.name,
                "region": region,
                "run_id": str(run_id_for(row.id, slot, region, "manual")),
                "timeout": spec.timeout,
            }
            for region in chosen
        )
    if not items:
        raise Invalid(
            f"no check tagged '{tag}' runs in {', '.join(regions or [])}",
            [{"field": "regions", "message": "no tagged check runs there"}],
        )
    run_set = RunSet(
        id=uuid.uuid4(), tag=tag, created_at=slot, items=[*items, *({"skipped": s} for s in skipped)]
    )
    async with store.sessions() as session, session.begin():
        session.add(run_set)
    for due in dues:
        await store.bus.publish(due)
    log.info("run set started id=%s tag=%s runs=%d skipped=%d", run_set.id, tag, len(items), len(skipped))
    return run_set


async def load(sessions: Sessions, run_set_id: uuid.UUID) -> RunSet:
    """One run set, or 404."""
    async with sessions() as session:
        found: RunSet | None = await session.get(RunSet, run_set_id)
    if found is None:
        raise NotFound(f"no run set with id {run_set_id}")
    return found


async def report(sessions: Sessions, run_set: RunSet) -> dict[str, Any]:
    """The set as the API returns it: each run (``pending`` until stored) and the overall ``state``:
    ``running`` while any run is pending, else ``failed`` if any run failed, ``error`` if any run could
    not complete (error or missed), ``passed`` otherwise."""
    items = [item for item in run_set.items if "run_id" in item]
    skipped = [item["skipped"] for item in run_set.items if "skipped" in item]
    ids = [uuid.UUID(item["run_id"]) for item in items]
    async with sessions() as session:
        rows = {
            run.run_id: run
            for run in (await session.execute(select(Run).where(Run.run_id.in_(ids)))).scalars()
        }
    out = []
    for item in items:
        run = rows.get(uuid.UUID(item["run_id"]))
        out.append(
            {
                "check_id": item["check_id"],
                "check": item["check"],
                "region": item["region"],
                "run_id": item["run_id"],
                "status": run.status if run else "pending",
                "run": run_view(run) if run else None,
            }
        )
    statuses = {entry["status"] for entry in out}
    if "pending" in statuses:
        state = "running"
    elif "failed" in statuses:
        state = "failed"
    elif statuses - {PASSED}:
        state = "error"
    else:
        state = "passed"
    return {
        "id": str(run_set.id),
        "tag": run_set.tag,
        "created_at": run_set.created_at.isoformat().replace("+00:00", "Z"),
        "state": state,
        "pending": sum(1 for entry in out if entry["status"] == "pending"),
        "runs": out,
        "skipped": skipped,
    }
