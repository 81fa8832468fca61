"""Composition root of the scheduler: settings → leader lock, schedule → routes and lifecycles."""

from __future__ import annotations

import functools
import os
import socket
import uuid

from contracts.topology import scheduler_changes
from contracts.v1 import CheckChanged
from services.common.bus import Bus, Route
from services.common.db.sessions import Sessions
from services.common.metrics import SCHEDULER_BACKLOG, SCHEDULER_EPOCH, SCHEDULER_LEADER
from services.common.service import Service
from services.common.settings import Settings
from services.scheduler.handlers import handle_check_changed
from services.scheduler.leader import LeaderElector, make_lock
from services.scheduler.schedule import CheckSchedule


def instance_name() -> str:
    """A name unique to this process, for its private queue and as the lease holder."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def build(settings: Settings, bus: Bus, sessions: Sessions) -> Service:
    """The scheduler service over ``bus`` and ``sessions`` (a sessionmaker over the settings' database).

    Lifecycles start schedule-then-elector and stop in reverse, so leadership is given up before the jobs
    stop and a standby takes over within a poll.
    """
    instance = instance_name()
    elector = LeaderElector(make_lock(settings.resolved_database_url(), sessions), holder=instance)
    schedule = CheckSchedule(bus, sessions, elector)
    elector.on_elected(schedule.on_elected)
    SCHEDULER_LEADER.set_function(lambda: float(elector.is_leader()))
    SCHEDULER_EPOCH.set_function(lambda: float(elector.epoch))
    SCHEDULER_BACKLOG.set_function(lambda: float(schedule.ledger.backlog))
    changes = Route(
        scheduler_changes(instance),
        {CheckChanged: functools.partial(handle_check_changed, schedule=schedule)},
        prefetch=1,
    )
    return Service(name="scheduler", routes=[changes], lifecycles=[schedule, elector])
