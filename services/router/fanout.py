"""Turning one slot into one run per region: deterministic ids, expiries, and the missed-run record."""

from __future__ import annotations

import logging
from datetime import timedelta

from contracts.v1 import CheckDue, CheckSpec, MissedReason, RunCheck, RunMissed, run_id_for
from services.common.secretbox import Sealer, SealError

log = logging.getLogger(__name__)


def run_ttl(interval: int, *, minimum: float, maximum: float) -> float:
    """How long a run may wait for a runner, in seconds: its interval, clamped to [minimum, maximum].

    A run that cannot start while it is still fresh would measure a stale slot; it expires instead.
    """
    return max(minimum, min(float(interval), maximum))


def runner_view(spec: CheckSpec) -> CheckSpec:
    """``spec`` without its alert channels and sealed secrets: a run leaves home for a region's broker
    and runner host, which need the request and assertions but must never hold a webhook secret, a
    routing key, or any secret the run does not use."""
    if not spec.alerts and not spec.secrets and not spec.global_secrets:
        return spec
    return spec.model_copy(update={"alerts": [], "secrets": {}, "global_secrets": {}})


def run_secrets(spec: CheckSpec, box: Sealer | None) -> dict[str, str] | None:
    """The secrets ``spec``'s requests use, opened for one run (the check's own win over global ones).
    One the key cannot open is left out: the run then fails saying which secret is missing.

    A check with no sealed secret (nearly all) returns before its requests' placeholders are parsed:
    this runs for every slot on the router's hot path, and the runner reads None as "no secrets"."""
    if box is None or not (spec.secrets or spec.global_secrets):
        return None
    used = spec.referenced("secrets")
    if not used:
        return None
    opened: dict[str, str] = {}
    for name in sorted(used):
        sealed = spec.secrets.get(name) or spec.global_secrets.get(name)
        if sealed is None:
            continue
        try:
            opened[name] = box.open(sealed)
        except SealError:
            log.warning("secret not opened name=%s check=%s (deployment key differs?)", name, spec.name)
    return opened


def fan_out(due: CheckDue, *, ttl: float, box: Sealer | None = None) -> list[RunCheck]:
    """One ``RunCheck`` per region of the slot (``due.regions`` overrides the spec's, for confirmations),
    each carrying the secrets its requests use, opened with ``box``."""
    regions = due.regions if due.regions else due.spec.regions
    expires_at = due.slot + timedelta(seconds=ttl)
    spec = runner_view(due.spec)
    secrets = run_secrets(due.spec, box)
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
            secrets=secrets,
        )
        for region in regions
    ]


def missed(run: RunCheck, reason: MissedReason, detail: str = "") -> RunMissed:
    """The record that ``run`` never ran."""
    return RunMissed(
        run_id=run.run_id,
        check_id=run.check_id,
        slot=run.slot,
        region=run.region,
        trigger=run.trigger,
        reason=reason,
        detail=detail,
    )
