"""The status page's reads on both databases: daily bars (closed days remembered, today read again),
sparklines, and states from incidents and the alert policy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.status_view import DailyCache, Day, check_state, daily, sparklines
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Check, Incident, RunRollup

NOW = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
async def sessions(db_url: str) -> Any:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def rollup(check_id: uuid.UUID, region: str, bucket: datetime, passed: int, ms: float = 100.0) -> RunRollup:
    return RunRollup(
        check_id=check_id,
        region=region,
        bucket=bucket,
        total=10,
        responded=10,
        passed=passed,
        failed=10 - passed,
        errors=0,
        missed=0,
        sum_ms=10 * ms,
        latency_hist={"100": 10},
    )


async def days_of(sessions: Any, check_id: uuid.UUID, now: datetime, cache: DailyCache) -> list[Day]:
    closed, today = (await daily(sessions, [check_id], now=now, cache=cache))[check_id]
    assert closed.attempted == sum(day.attempted for day in closed.bars)
    assert closed.html.count('class="bar ') == 89
    return [*closed.bars, today]


async def test_daily_bars_and_sparkline_on_both_databases(sessions: Any) -> None:
    check_id = uuid.uuid4()
    hour = NOW.replace(minute=0)
    async with sessions() as session, session.begin():
        session.add(
            Check(id=check_id, name="c", spec={}, enabled=True, revision=1, created_at=NOW, updated_at=NOW)
        )
        session.add_all(
            [
                rollup(check_id, "us-east-1", hour, 10, ms=200.0),
                rollup(check_id, "eu-north-1", hour, 5, ms=100.0),
                rollup(
                    check_id, "us-east-1", hour.replace(hour=0) - timedelta(hours=1), 10
                ),  # yesterday 23:00
                rollup(check_id, "us-east-1", hour - timedelta(days=89), 9),
                rollup(check_id, "us-east-1", hour - timedelta(days=95), 0),  # older than the bars
            ]
        )
    cache = DailyCache()
    bars = await days_of(sessions, check_id, NOW, cache)
    assert len(bars) == 90
    assert bars[-1].day == NOW.date()
    assert (bars[-1].attempted, bars[-1].passed) == (20, 15)
    assert bars[-1].level == "major"
    assert (bars[-2].attempted, bars[-2].passed, bars[-2].level) == (10, 10, "ok")
    assert (bars[0].attempted, bars[0].passed) == (10, 9)
    assert sum(bar.attempted for bar in bars) == 40

    async with sessions() as session, session.begin():
        session.add(rollup(check_id, "us-east-1", hour - timedelta(days=2), 0))  # a late closed day
        session.add(rollup(check_id, "ca-central-1", hour, 10))
    again = await days_of(sessions, check_id, NOW, cache)
    assert again[-3].attempted == 0  # closed days are read once a day
    assert (again[-1].attempted, again[-1].passed) == (30, 25)  # today is read every time
    tomorrow = await days_of(sessions, check_id, NOW + timedelta(days=1), cache)
    assert tomorrow[-4].attempted == 10

    spark = (await sparklines(sessions, [check_id], now=NOW))[check_id]
    assert len(spark) == 24
    assert spark[-1] == round((2000 + 1000 + 1000) / 30, 1)
    assert spark[8] == 100.0  # yesterday 23:00 is within the last 24 hours
    assert [value for i, value in enumerate(spark[:-1]) if i != 8] == [None] * 22


STATES = [
    (3, None, False, False, "operational"),
    (3, ["eu-north-1"], False, False, "degraded"),
    (
        3,
        [{"region": "eu-north-1"}, {"region": "us-east-1"}, {"region": "ca-central-1"}],
        False,
        False,
        "down",
    ),
    (1, ["eu-north-1"], False, False, "down"),
    (3, [], False, False, "down"),
    (3, None, True, False, "degraded"),
    (3, ["eu-north-1"], False, True, "maintenance"),
]


@pytest.mark.parametrize(
    ("regions", "failing", "degraded", "maintenance", "state"),
    STATES,
    ids=["quiet", "one-of-three", "all-three", "only-region", "no-regions-named", "slow", "maintenance"],
)
def test_state_comes_from_the_incident_and_the_policy(
    regions: int, failing: list[Any] | None, degraded: bool, maintenance: bool, state: str
) -> None:
    incident = (
        None
        if failing is None
        else Incident(check_id=uuid.uuid4(), state="open", opened_at=NOW, failing_regions=failing)
    )
    assert (
        check_state(region_count=regions, incident=incident, degraded=degraded, in_maintenance=maintenance)[0]
        == state
    )


def test_notices_thread_by_title_and_close_on_resolved_or_when_the_window_ends() -> None:
    from services.api.status_view import notice_threads
    from services.common.db.models import StatusNotice

    page = uuid.uuid4()

    def notice(kind: str, title: str, status: str, minutes_ago: int, **window: Any) -> StatusNotice:
        return StatusNotice(
            id=uuid.uuid4(),
            page_id=page,
            kind=kind,
            title=title,
            status=status,
            body=f"{status} body",
            created_at=NOW - timedelta(minutes=minutes_ago),
            **window,
        )

    notices = [
        notice("incident", "Checkout errors", "monitoring", 5),
        notice("incident", "Checkout errors", "investigating", 30),
        notice("incident", "Login slow", "resolved", 60),
        notice("incident", "login slow", "investigating", 90),
        notice(
            "maintenance",
            "DB upgrade",
            "in_progress",
            10,
            starts_at=NOW - timedelta(minutes=10),
            ends_at=NOW + timedelta(hours=1),
        ),
        notice(
            "maintenance",
            "Old window",
            "scheduled",
            900,
            starts_at=NOW - timedelta(hours=5),
            ends_at=NOW - timedelta(hours=4),
        ),
    ]
    active, past = notice_threads(notices, NOW)
    assert [(t["title"], t["status"]) for t in active] == [
        ("Checkout errors", "monitoring"),
        ("DB upgrade", "in_progress"),
    ]
    assert [u["status"] for u in active[0]["earlier"]] == ["investigating"]
    assert [(t["title"], t["status"]) for t in past] == [
        ("Login slow", "resolved"),
        ("Old window", "scheduled"),
    ]
