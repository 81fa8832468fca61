"""A region's account on home, attacked: a compromised region host logs in to home with its links'
credentials and tries everything the links do not need. The broker refuses each attempt.

Before region accounts had their own permissions (``'.*' '.*' '.*'``), every attempt below succeeded.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import aio_pika
import pamqp.constants
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiormq.exceptions import ChannelAccessRefused, ChannelNotFoundEntity

from contracts.topology import (
    ALERTS_EVALUATE,
    CHECK_COMPLETED,
    CHECK_DUE,
    CONTROL_EXCHANGE,
    RESULTS_EXCHANGE,
    RESULTS_STORE,
    RUN_MISSED,
    RUNS_DEAD_LETTER_EXCHANGE,
    RUNS_EXCHANGE,
    region_runs_exchange,
    runner_queue,
)
from contracts.v1 import CheckDue, CheckSpec, encode, utcnow
from services.common.bus.rabbit import RabbitBus
from services.common.region_management import ManagementApi
from services.common.region_topology import BrokerAddress
from tests.federation.world import OTHER, REGION, region_account
from tests.support.rabbit_node import with_credentials

pytestmark = [pytest.mark.rabbit]

Attack = Callable[[AbstractChannel], Awaitable[object]]
OWN_BUFFER = f"federation: {region_runs_exchange(REGION)} -> seymour-{REGION}:seymour.runs"
OTHER_BUFFER = f"federation: {region_runs_exchange(OTHER)} -> seymour-{OTHER}:seymour.runs"


def forged_due() -> bytes:
    spec = CheckSpec(
        name="forged",
        request={"url": "http://127.0.0.1:9/"},  # type: ignore[arg-type]
        regions=[OTHER],
    )
    return encode(
        CheckDue(
            check_id=uuid.uuid4(),
            slot=utcnow() + timedelta(seconds=1),
            revision=1,
            spec=spec,
            trigger="manual",
        )
    )


async def _publish(channel: AbstractChannel, exchange: str, key: str, body: bytes = b"{}") -> None:
    target = await channel.get_exchange(exchange, ensure=False)
    await target.publish(aio_pika.Message(body), key)


async def _consume(channel: AbstractChannel, queue: str) -> None:
    declared = await channel.get_queue(queue, ensure=False)
    await declared.consume(_ack)


async def _ack(message: AbstractIncomingMessage) -> None:
    await message.ack()


async def _bind_own_buffer(channel: AbstractChannel, exchange: str, key: str) -> None:
    queue = await channel.declare_queue(OWN_BUFFER, durable=True)
    await queue.bind(exchange, key)


ATTACKS: dict[str, Attack] = {
    "consume-other-regions-runs": lambda ch: _consume(ch, runner_queue(OTHER).name),
    "consume-alerts-evaluate": lambda ch: _consume(ch, ALERTS_EVALUATE.name),
    "consume-results-store": lambda ch: _consume(ch, RESULTS_STORE.name),
    "delete-results-store": lambda ch: ch.queue_delete(RESULTS_STORE.name),
    "delete-other-regions-queue": lambda ch: ch.queue_delete(runner_queue(OTHER).name),
    "publish-manual-check-due": lambda ch: _publish(ch, CONTROL_EXCHANGE, CHECK_DUE, forged_due()),
    "publish-run-to-other-region": lambda ch: _publish(ch, RUNS_EXCHANGE, OTHER),
    "publish-check-changed-on-results": lambda ch: _publish(ch, RESULTS_EXCHANGE, "check.changed.v1"),
    "bind-own-buffer-to-all-runs": lambda ch: _bind_own_buffer(ch, RUNS_EXCHANGE, OTHER),
    "bind-own-buffer-to-other-region": lambda ch: _bind_own_buffer(ch, region_runs_exchange(OTHER), OTHER),
    "declare-other-regions-buffer": lambda ch: ch.declare_queue(OTHER_BUFFER, durable=True),
    "declare-exchange": lambda ch: ch.declare_exchange("seymour.evil", durable=True),
}

ALLOWED: dict[str, Attack] = {
    "publish-result": lambda ch: _publish(ch, RESULTS_EXCHANGE, CHECK_COMPLETED),
    "publish-run-received-too-late": lambda ch: _publish(ch, RESULTS_EXCHANGE, RUN_MISSED),
    "publish-dead-run": lambda ch: _publish(ch, RUNS_DEAD_LETTER_EXCHANGE, REGION),
    "bind-own-buffer-to-own-runs": lambda ch: _bind_own_buffer(ch, region_runs_exchange(REGION), REGION),
}


@pytest.fixture
async def home(rabbit_url: str) -> str:
    """Home's topology as the services declare it, another region served from home and a third one
    linked (its own runs exchange)."""
    bus = RabbitBus(rabbit_url, instance="home")
    await bus.start()
    for spec in (RESULTS_STORE, ALERTS_EVALUATE, runner_queue(OTHER)):
        await bus.declare_queue(spec)
    await bus.stop()
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel()
        linked = await channel.declare_exchange(region_runs_exchange(OTHER), "direct", durable=True)
        await linked.bind(RUNS_EXCHANGE, OTHER)
    return rabbit_url


@pytest.fixture
async def as_region(home: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Home's URL logging in as the region's own account. The attacker's client sends any queue name
    (aio-pika's refuses the ``>`` of federation names before the broker could)."""
    monkeypatch.setitem(pamqp.constants.DOMAIN_REGEX, "queue-name", re.compile(r".*"))
    async with region_account(home, REGION) as account:
        yield with_credentials(home, *account)


async def _attempt(url: str, attack: Attack) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await attack(channel)
    finally:
        await connection.close()


async def test_a_region_account_is_refused_what_its_links_do_not_need(as_region: str) -> None:
    """Every attack in the table, each on a fresh connection (one vhost and account for all: fast)."""
    succeeded = []
    for name, attack in ATTACKS.items():
        try:
            await _attempt(as_region, attack)
        except ChannelAccessRefused:
            continue
        except Exception as exc:
            succeeded.append(f"{name} (then {exc!r})")
            continue
        succeeded.append(name)
    assert succeeded == []


async def test_a_region_account_may_do_what_its_links_need(as_region: str) -> None:
    for name, action in ALLOWED.items():
        try:
            await _attempt(as_region, action)
        except ChannelAccessRefused as exc:
            raise AssertionError(f"{name} refused: {exc}") from exc


async def test_granting_removes_the_home_buffer_of_a_link_made_before_region_exchanges(
    home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """That buffer is bound to ``seymour.runs`` itself: left there, it would copy every run of the
    region and dead-letter each copy as missed."""
    monkeypatch.setitem(pamqp.constants.DOMAIN_REGEX, "queue-name", re.compile(r".*"))
    legacy = f"federation: {RUNS_EXCHANGE} -> seymour-{REGION}"
    connection = await aio_pika.connect(home)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(legacy, durable=True)
        await queue.bind(RUNS_EXCHANGE, REGION)
    async with region_account(home, REGION):
        pass
    connection = await aio_pika.connect(home)
    async with connection:
        channel = await connection.channel()
        with pytest.raises(ChannelNotFoundEntity):
            await channel.declare_queue(legacy, passive=True)


GRANT_CASES = [
    ("account-of-the-region", "seymour-eu-north-1.{tag}", 0, "account seymour-eu-north-1.{tag} on home"),
    ("account-named-for-another-region", "seymour-us-west-2.{tag}", 1, "must be named 'seymour-eu-north-1'"),
]


@pytest.mark.parametrize(
    ("user", "code", "says"), [c[1:] for c in GRANT_CASES], ids=[c[0] for c in GRANT_CASES]
)
async def test_seymour_region_grant_takes_the_password_on_stdin(
    rabbit_url: str, user: str, code: int, says: str
) -> None:
    """What the provisioned home runs every minute: the password never appears in argv."""
    tag = uuid.uuid4().hex[:8]
    user, says, password = user.format(tag=tag), says.format(tag=tag), uuid.uuid4().hex
    command = ["region", "grant", REGION, "--user", user, "--home", rabbit_url]
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", *command],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert says in done.stdout + done.stderr
    if code:
        return
    try:
        connection = await aio_pika.connect(with_credentials(rabbit_url, user, password))
        await connection.close()
    finally:
        async with ManagementApi(BrokerAddress.parse(rabbit_url)) as api:
            await api.request("DELETE", f"/api/users/{user}")
