"""A result that fits on the bus: home drops bodies over ``MAX_MESSAGE_BYTES`` unread, so shrink first."""

from __future__ import annotations

import logging
from typing import Any

from contracts.topology import MAX_MESSAGE_BYTES
from contracts.v1 import CheckCompleted, encode

log = logging.getLogger(__name__)


def _lean(outcome: Any) -> dict[str, Any]:
    """The fields of a run or step that can grow with what the endpoint sent, emptied."""
    assertions = [a.model_copy(update={"observed": None}) for a in outcome.assertions]
    return {"response": None, "assertions": assertions}


def fit(completed: CheckCompleted, limit: int = MAX_MESSAGE_BYTES) -> CheckCompleted:
    """``completed`` as it is if it fits in ``limit`` bytes; else without response samples and observed
    values (the endpoint chose their size: an answer of 100 long headers per step, 30 steps, would
    otherwise make the whole result vanish at home). Status, error, timings and verdicts stay."""
    return fit_sized(completed, limit)[0]


def fit_sized(completed: CheckCompleted, limit: int = MAX_MESSAGE_BYTES) -> tuple[CheckCompleted, int]:
    """:func:`fit`, with the encoded size of what it returns (the outbox packs batches by it, and the
    result is encoded here anyway)."""
    size = len(encode(completed))
    if size <= limit:
        return completed, size
    steps = None
    if completed.steps is not None:
        steps = [step.model_copy(update={**_lean(step), "extracted": {}}) for step in completed.steps]
    lean = completed.model_copy(update={**_lean(completed), "steps": steps})
    lean_size = len(encode(lean))
    log.warning(
        "result too large for the bus, samples dropped run_id=%s bytes=%d now=%d",
        completed.run_id,
        size,
        lean_size,
    )
    return lean, lean_size


__all__ = ["fit", "fit_sized"]
