"""Per-region progress lines while work runs, and the summary with each region's result."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Literal, TextIO

Verb = Literal["create", "update", "replace", "delete", "ok", "found", "missing"]
Status = Literal["ok", "changed", "incomplete", "failed"]

_SIGN: dict[Verb, str] = {
    "create": "+",
    "update": "~",
    "replace": "±",
    "delete": "-",
    "ok": "=",
    "found": "•",
    "missing": "?",
}
CHANGES: frozenset[Verb] = frozenset({"create", "update", "replace", "delete"})


@dataclass(frozen=True)
class Step:
    """One resource and what was (or, in a plan, would be) done to it."""

    verb: Verb
    kind: str
    name: str
    detail: str = ""


@dataclass
class RegionResult:
    """Everything done in one region, and how it ended."""

    region: str
    role: str
    steps: list[Step] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "failed"
        if any(step.verb in CHANGES for step in self.steps):
            return "changed"
        return "incomplete" if any(step.verb == "missing" for step in self.steps) else "ok"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for step in self.steps:
            out[step.verb] = out.get(step.verb, 0) + 1
        return out


class Reporter:
    """Prints one line per step as it happens, prefixed by its region; safe to call from many threads."""

    def __init__(self, out: TextIO | None = None, *, quiet_ok: bool = False) -> None:
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        self._quiet_ok = quiet_ok
        self._width = 16

    def line(self, label: str, text: str) -> None:
        with self._lock:
            print(f"{label:<{self._width}} {text}", file=self._out, flush=True)

    def step(self, label: str, step: Step, *, planning: bool) -> None:
        if self._quiet_ok and step.verb == "ok":
            return
        verb = f"would {step.verb}" if planning and step.verb in CHANGES else step.verb
        detail = f"  ({step.detail})" if step.detail else ""
        self.line(label, f"{_SIGN[step.verb]} {step.kind} {step.name}: {verb}{detail}")

    def summary(self, title: str, results: list[RegionResult], *, planning: bool = False) -> None:
        with self._lock:
            print(f"\n{title}", file=self._out)
            for result in results:
                counts = ", ".join(f"{n} {verb}" for verb, n in sorted(result.counts().items()))
                outcome = f"failed: {result.error}" if result.error else result.status
                if planning and outcome == "changed":
                    outcome = "would change"
                print(f"  {result.region:<16} {result.role:<7} {outcome}  [{counts}]", file=self._out)
            self._out.flush()
