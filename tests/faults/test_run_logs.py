"""JSON log lines about a run carry its run id, check id, region and slot, in every service, not only the
runner's: the bus binds the message it hands to a handler, the scheduler binds the slot it fires.

The services run in one process on the real broker and database (one log capture sees them all) with a
check whose target fails, so each writes a line about a run of its own accord: the scheduler fires the slot,
alerts opens an incident, the router drops a slot from a deposed leader, results refuses a run whose region
does not fit its column. Each of those lines names at most the check in its text; the rest comes bound.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from contracts.v1 import CheckChanged, CheckCompleted, CheckDue, CheckSpec, utcnow
from services import runtime
from services.common.db.models import Check
from services.common.logs import JsonFormatter
from services.common.settings import Settings
from tests.support.servers import demo_check, demo_target, receiver
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres]

REGION = "eu-north-1"
RUN = ("run_id", "check_id", "region", "slot")
#: A slot has no region yet (the router fans it out): its lines carry the check and the slot.
SLOT = ("check_id", "slot")


class Lines(logging.Handler):
    """Every ``services.*`` record of the test, formatted as the JSON log line it would be."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("services."):
            self.entries.append(json.loads(self.format(record)))

    def about(self, logger: str, text: str) -> list[dict[str, Any]]:
        """Lines from loggers under ``logger`` whose message contains ``text``."""
        return [e for e in self.entries if e["logger"].startswith(logger) and text in e["message"]]


@contextmanager
def captured() -> Iterator[Lines]:
    lines = Lines()
    root = logging.getLogger()
    services = logging.getLogger("services")
    levels = (root.level, services.level)
    root.addHandler(lines)
    services.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(lines)
        services.setLevel(levels[1])


async def test_lines_about_a_run_carry_its_ids_in_every_service(pg_url: str, rabbit_url: str) -> None:
    settings = Settings(
        broker_url=rabbit_url,
        database_url=pg_url,
        heartbeat_interval=0.5,
        results_batch_ms=10,
        runner_stale_after=3.0,
    )
    async with demo_target() as target, receiver() as sink:
        target.status = 500
        spec = demo_check(target.url, sink.url, interval=1, name="logged")
        spec["regions"] = [REGION]
        check = CheckSpec.model_validate(spec)
        check_id = uuid.uuid4()
        with captured() as lines:
            rt = await runtime.start(
                settings, ["scheduler", "router", "runner", "results", "alerts"], runner_regions=[REGION]
            )
            try:
                assert rt.sessions is not None
                async with rt.sessions() as session, session.begin():
                    session.add(Check(id=check_id, name=check.name, spec=check.model_dump(mode="json")))
                await rt.bus.publish(
                    CheckChanged(check_id=check_id, change="created", revision=1, spec=check)
                )
                await eventually(
                    lambda: bool(lines.about("services.alerts", "incident opened")),
                    within=30,
                    what="an incident opened on the failing check",
                )
                # A slot from a deposed leader (epoch 0 is older than any leader's).
                await rt.bus.publish(
                    CheckDue(check_id=check_id, slot=utcnow(), revision=1, spec=check, epoch=0)
                )
                # A run results cannot store: its region is longer than the column.
                slot = utcnow() - timedelta(seconds=1)
                await rt.bus.publish(
                    CheckCompleted.model_validate(
                        {
                            "run_id": uuid.uuid4(),
                            "check_id": check_id,
                            "slot": slot,
                            "region": "r" * 60,
                            "runner_id": "logged",
                            "status": "passed",
                            "started_at": slot,
                            "completed_at": slot,
                        }
                    )
                )
                await eventually(
                    lambda: (
                        bool(lines.about("services.router", "deposed"))
                        and bool(
                            lines.about(
                                "services.common.bus",
                                "handler failed queue=results.store kind=check.completed",
                            )
                        )
                    ),
                    within=30,
                    what="the router and results lines",
                )
            finally:
                await rt.stop()

    expected = {
        ("services.scheduler", "slot fired"): SLOT,
        ("services.router", "deposed"): SLOT,
        ("services.alerts", "incident opened"): RUN,
        ("services.common.bus", "handler failed queue=results.store kind=check.completed"): RUN,
    }
    for (logger, text), fields in expected.items():
        found = lines.about(logger, text)
        assert found, f"no line {text!r} from {logger}"
        for entry in found:
            assert all(entry.get(name) for name in fields), (fields, entry)
            assert entry["check_id"] == str(check_id), entry
    incident = lines.about("services.alerts", "incident opened")[0]
    assert "run_id=" not in incident["message"], "the run's ids came bound, not from the text"
    assert incident["region"] == REGION
