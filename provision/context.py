"""What every step in one region needs: clients, the desired state, and where to record what it did."""

from __future__ import annotations

from dataclasses import dataclass

from provision.aws import Aws
from provision.plan import Config, Role
from provision.report import RegionResult, Reporter, Step, Verb

#: What a resource id reads as in a plan, before the resource exists.
PLANNED = "(planned)"


class ProvisionError(RuntimeError):
    """A step cannot go on; the message says what to do about it. Other regions carry on."""


@dataclass
class Ctx:
    """One worker's view: one region, one role, planning or applying."""

    aws: Aws
    cfg: Config
    region: str
    role: Role
    dry_run: bool
    reporter: Reporter
    result: RegionResult

    @property
    def label(self) -> str:
        return f"{self.region} (home)" if self.role == "home" else self.region

    def record(self, verb: Verb, kind: str, name: str, detail: str = "") -> None:
        step = Step(verb, kind, name, detail)
        self.result.steps.append(step)
        self.reporter.step(self.label, step, planning=self.dry_run)

    @property
    def applying(self) -> bool:
        return not self.dry_run
