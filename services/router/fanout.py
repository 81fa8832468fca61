"""Turning one slot into one run per region: deterministic ids, expiries, and the missed-run record."""

from __future__ import annotations

from datetime import timedelta

from contracts.v1 import CheckDue, CheckSpec, RunCheck, RunMissed, run_id_for


def run_ttl(interval: int, *, minimum: float, maximum: float) -> float:
    """How long a run may wait for a runner, in seconds: its interval, clamped to [minimum, maximum].

    A run that cannot start while it is still fresh would measure a stale slot; it expires instead.
    """
    return max(minimum, min(float(interval), maximum))


def runner_view(spec: CheckSpec) -> CheckSpec:
    """``spec`` without its alert channels: a run leaves home for a region's broker and runner host,
    which need the request and assertions but must never hold a webhook secret or a routing key."""
    if not spec.alerts:
        return spec
    return spec.model_copy(update={"alerts": []})


def fan_out(due: CheckDue, *, ttl: float) -> list[RunCheck]:
    """One ``RunCheck`` per region of the slot (``due.regions`` overrides the spec's, for confirmations)."""
    regions = due.regions if due.regions else due.spec.regions
    expires_at = due.slot + timedelta(seconds=ttl)
    spec = runner_view(due.spec)
    return [
        RunCheck(
            run_id=run_id_for(due.check_id, due.slot, region, due.trigger),
            check_id=due.check_id,
            slot=due.slot,
            region=region,
            revision=due.revision,
            spec=spec,
            expires_at=expires_at,
            trigger=due.trigger,
        )
        for region in regions
    ]


def missed(run: RunCheck, reason: str, detail: str = "") -> RunMissed:
    """The record that ``run`` never ran."""
    return RunMissed(
        run_id=run.run_id,
        check_id=run.check_id,
        slot=run.slot,
        region=run.region,
        trigger=run.trigger,
        reason="no_runner" if reason == "no_runner" else "expired",
        detail=detail,
    )
