"""Region topology as code: what a regional broker declares so runs reach it from home and results go back.

::

    home broker                                    regional broker (cluster name seymour-<region>)
    [seymour.runs] ─<region>─► [seymour.runs.<region>]
                       ─► federation: seymour.runs.<region> -> seymour-<region>:…  ◄── federation link
        (home buffer: message-ttl + expires; home policy HOME_BUFFER_POLICY dead-letters runs that
         expire there to [seymour.runs.dlx] → router.dead-runs → RunMissed)
                                                    [seymour.runs] ─<region>─► runner.<region> ─► runner
    [seymour.results]  ◄── shovel ── region.results-outbox   ◄─#─ [seymour.results]  ◄─ runner
    [seymour.runs.dlx] ◄── shovel ── region.dead-runs-outbox ◄─#─ [seymour.runs.dlx] ◄─ runs expired
                                                                                       in runner.<region>

Both links are opened from the region outward, ``ack-mode: on-confirm`` (a message leaves one broker only
once the other confirmed it), and reconnect every ``reconnect_delay`` seconds, so a WAN outage only
buffers: runs on home (bounded by their own expiry and by the upstream's ``message-ttl``, the queue itself
by ``expires`` so a region gone for good does not make home grow forever), results in the region's
outbox. Links redeliver: every consumer downstream is idempotent on ``run_id``.

The federation upstream binds on home only the keys the regional ``seymour.runs`` has bindings for — the
region's own code — so runs for other regions never cross. Each region's links log in to home as its own
account (``seymour-<region>``, :func:`account_plan`), which may read only ``seymour.runs.<region>`` and its
own federation buffer, and write only there and to ``seymour.results`` / ``seymour.runs.dlx``: a
compromised region host can neither read other regions' runs or ``alerts.evaluate``, nor delete queues,
nor publish commands. The shovels stamp ``user_id`` with that account, which home's broker validates, so
home knows for which region a result may speak. The regional broker's cluster name is set
to ``seymour-<region>`` because RabbitMQ names the home buffer queue after it: that makes the name
predictable (``seymour region status`` looks it up) and unique per region.

Every name comes from :mod:`contracts.topology`. Everything is applied through the management HTTP
API (PUT is idempotent; re-running ``connect`` with the same arguments changes nothing, with new ones
updates the links in place).
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from contracts.topology import (
    CHECK_COMPLETED,
    CHECK_COMPLETED_BATCH,
    CLUSTER_NAME_PREFIX,
    DEAD_RUNS_OUTBOX,
    DEAD_RUNS_SHOVEL,
    EXCHANGES,
    HOME_BUFFER_PATTERN,
    HOME_BUFFER_POLICY,
    RESULTS_EXCHANGE,
    RESULTS_OUTBOX,
    RESULTS_SHOVEL,
    RUN_MISSED,
    RUNNER_HEARTBEAT,
    RUNNER_QUEUE_EXPIRES_MS,
    RUNS_DEAD_LETTER_EXCHANGE,
    RUNS_EXCHANGE,
    RUNS_FEDERATION_POLICY,
    UPSTREAM,
    region_runs_exchange,
    runner_queue,
)
from services.common.bus.rabbit import queue_arguments

#: Backstop for runs buffered on home; each run's own expiry (``run_expiry_max``) is far shorter.
RUN_BUFFER_TTL_MS: Final = 3600 * 1000
#: The home buffer queue is deleted after this long without its link (a region gone for good);
#: runs for that region are then unroutable and recorded as ``no_runner`` at once.
RUN_BUFFER_EXPIRES_MS: Final = RUNNER_QUEUE_EXPIRES_MS
#: Results wait in the regional outbox at most this long for home to come back.
OUTBOX_TTL_MS: Final = 7 * 24 * 3600 * 1000
DEFAULT_RECONNECT_DELAY: Final = 5.0
DEFAULT_MANAGEMENT_PORT: Final = 15672

_REGION_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}$")

Method = Literal["PUT", "POST", "DELETE"]


@dataclass(frozen=True)
class Step:
    """One management API request; ``path`` segments are already quoted."""

    method: Method
    path: str
    body: dict[str, Any] = field(default_factory=dict)
    what: str = ""
    #: A DELETE of something that may already be gone: a 404 is success.
    missing_ok: bool = False


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker is: its AMQP URL, the management API next to it, the vhost and credentials."""

    amqp_url: str
    api_url: str
    username: str
    password: str
    vhost: str

    @classmethod
    def parse(cls, amqp_url: str, api_url: str | None = None) -> BrokerAddress:
        """Split ``amqp://user:pass@host:port/vhost``; the API defaults to ``http://host:15672``.

        Raises ``ValueError`` for anything that is not an ``amqp``/``amqps`` URL.
        """
        parts = urllib.parse.urlsplit(amqp_url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError(f"not an AMQP URL: {redact(amqp_url)}")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        vhost = urllib.parse.unquote(path) if path else "/"
        if api_url is None:
            scheme = "https" if parts.scheme == "amqps" else "http"
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            api_url = f"{scheme}://{host}:{DEFAULT_MANAGEMENT_PORT}"
        return cls(
            amqp_url=amqp_url,
            api_url=api_url.rstrip("/"),
            username=urllib.parse.unquote(parts.username or "guest"),
            password=urllib.parse.unquote(parts.password or "guest"),
            vhost=vhost,
        )

    @property
    def quoted_vhost(self) -> str:
        return q(self.vhost)


def q(segment: str) -> str:
    """A path segment for the management API (``/`` becomes ``%2F``)."""
    return urllib.parse.quote(segment, safe="")


def redact(url: str) -> str:
    """``url`` with its password replaced, for logs and output."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def check_region(region: str) -> str:
    """``region`` if it is a plausible region code (it becomes part of queue and broker names)."""
    if not _REGION_CODE.match(region):
        raise ValueError(f"not a region code: {region!r} (lower-case letters, digits and '-')")
    return region


def cluster_name(region: str) -> str:
    """The regional broker's cluster name, which RabbitMQ puts in the home buffer queue's name."""
    return f"{CLUSTER_NAME_PREFIX}{region}"


def home_buffer_queue(region: str, *, home_vhost: str = "/", region_vhost: str = "/") -> str:
    """The queue on home that buffers ``region``'s runs (declared by the federation link; RabbitMQ adds
    the regional exchange, and the vhost when the two vhosts differ, because the names differ)."""
    suffix = f":{RUNS_EXCHANGE}" if region_vhost == home_vhost else f":{region_vhost}:{RUNS_EXCHANGE}"
    return f"federation: {region_runs_exchange(region)} -> {cluster_name(region)}{suffix}"


def local_uri(vhost: str) -> str:
    """A shovel source URI for a vhost of the broker the shovel runs on (direct connection)."""
    return "amqp://" if vhost == "/" else f"amqp:///{q(vhost)}"


@dataclass(frozen=True)
class HomeTls:
    """How a region's links check that they talk to home: ``ca_file`` is a path *on the regional
    broker's host* (RabbitMQ opens it), ``server_name`` the name home's certificate must carry."""

    ca_file: str
    server_name: str


@dataclass(frozen=True)
class RegionLink:
    """One region's links to home.

    An ``amqps`` home needs ``tls``: both links then verify home's certificate against that CA and
    name (``verify_peer``, SNI). Without it RabbitMQ's TLS client accepts any certificate, so anyone on
    the path could pose as home, read every run and its secrets, and send commands.
    """

    region: str
    home: BrokerAddress
    local: BrokerAddress
    reconnect_delay: float = DEFAULT_RECONNECT_DELAY
    tls: HomeTls | None = None

    def __post_init__(self) -> None:
        if self.home.amqp_url.startswith("amqps://") and self.tls is None:
            raise ValueError("an amqps home needs its CA certificate (--home-ca): links must verify home")

    @property
    def home_uri(self) -> str:
        """Home's URI as both links use it: the vhost spelled out (RabbitMQ's URI parser reads
        ``amqp://host/`` as the empty vhost, not ``/``) and, with TLS, the CA to trust and the name to
        verify."""
        parts = urllib.parse.urlsplit(self.home.amqp_url)
        parts = parts._replace(path=f"/{q(self.home.vhost)}")
        query = urllib.parse.parse_qsl(parts.query)
        if self.tls is not None:
            query += [
                ("cacertfile", self.tls.ca_file),
                ("verify", "verify_peer"),
                ("server_name_indication", self.tls.server_name),
            ]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe="/")))

    @property
    def reconnect_seconds(self) -> int:
        """Whole seconds: the shovel's supervisor never restarts a worker given a float delay (3.10)."""
        return max(1, math.ceil(self.reconnect_delay))

    def upstream(self) -> dict[str, Any]:
        """The federation upstream definition (the home broker, as seen from the region)."""
        return {
            "uri": self.home_uri,
            "exchange": region_runs_exchange(self.region),
            "ack-mode": "on-confirm",
            # Runs keep home's user_id into the region: every consumer refuses a message without one.
            "trust-user-id": True,
            "max-hops": 1,
            "prefetch-count": 1000,
            "reconnect-delay": self.reconnect_seconds,
            "message-ttl": RUN_BUFFER_TTL_MS,
            "expires": RUN_BUFFER_EXPIRES_MS,
        }

    def shovel(self, source_queue: str, destination_exchange: str) -> dict[str, Any]:
        """A dynamic shovel from a regional queue to a home exchange, keeping each routing key."""
        return {
            "src-protocol": "amqp091",
            "src-uri": local_uri(self.local.vhost),
            "src-queue": source_queue,
            "src-prefetch-count": 1000,
            "src-delete-after": "never",
            "dest-protocol": "amqp091",
            "dest-uri": self.home_uri,
            "dest-exchange": destination_exchange,
            "dest-add-forward-headers": False,
            # Home's broker validates user_id against the link's account: home knows which region spoke.
            "dest-publish-properties": {"user_id": self.home.username},
            "ack-mode": "on-confirm",
            "reconnect-delay": self.reconnect_seconds,
        }

    def plan(self) -> list[Step]:
        """Every request that makes the regional broker a region of home, in order. Idempotent."""
        v = self.local.quoted_vhost
        runner = runner_queue(self.region)
        outbox_args = {"x-queue-type": "classic", "x-queue-mode": "lazy", "x-message-ttl": OUTBOX_TTL_MS}
        steps = [Step("PUT", "/api/cluster-name", {"name": cluster_name(self.region)}, "cluster name")]
        steps += [
            Step("PUT", f"/api/exchanges/{v}/{q(x.name)}", {"type": x.kind, "durable": True}, "exchange")
            for x in EXCHANGES
        ]
        queues = (
            (runner.name, queue_arguments(runner), runner.exchange, runner.binding_keys),
            (RESULTS_OUTBOX, outbox_args, RESULTS_EXCHANGE, ("#",)),
            (DEAD_RUNS_OUTBOX, outbox_args, RUNS_DEAD_LETTER_EXCHANGE, ("#",)),
        )
        for name, arguments, exchange, keys in queues:
            steps.append(
                Step("PUT", f"/api/queues/{v}/{q(name)}", {"durable": True, "arguments": arguments}, "queue")
            )
            steps += [
                Step(
                    "POST", f"/api/bindings/{v}/e/{q(exchange)}/q/{q(name)}", {"routing_key": key}, "binding"
                )
                for key in keys
            ]
        steps += [
            Step(
                "PUT",
                f"/api/parameters/federation-upstream/{v}/{q(UPSTREAM)}",
                {"value": self.upstream()},
                "federation upstream",
            ),
            Step(
                "PUT",
                f"/api/policies/{v}/{q(RUNS_FEDERATION_POLICY)}",
                {
                    "pattern": f"^{re.escape(RUNS_EXCHANGE)}$",
                    "definition": {"federation-upstream": UPSTREAM},
                    "apply-to": "exchanges",
                    "priority": 10,
                },
                "federation policy",
            ),
            Step(
                "PUT",
                f"/api/parameters/shovel/{v}/{q(RESULTS_SHOVEL)}",
                {"value": self.shovel(RESULTS_OUTBOX, RESULTS_EXCHANGE)},
                "results shovel",
            ),
            Step(
                "PUT",
                f"/api/parameters/shovel/{v}/{q(DEAD_RUNS_SHOVEL)}",
                {"value": self.shovel(DEAD_RUNS_OUTBOX, RUNS_DEAD_LETTER_EXCHANGE)},
                "dead-runs shovel",
            ),
        ]
        return steps


def region_permissions(region: str) -> dict[str, str]:
    """The configure/write/read regexes of ``region``'s account on home, derived from the topology.

    Its federation link declares, binds and consumes its own buffer (``federation: seymour.runs.<region>
    -> …``, queue and exchange) and binds it to ``seymour.runs.<region>`` (read on that exchange); its
    shovels publish to ``seymour.results`` and ``seymour.runs.dlx``. Nothing else: no other region's
    exchange or buffer, no ``alerts.evaluate`` or ``results.store``, no ``seymour.control``.
    """
    runs = re.escape(region_runs_exchange(check_region(region)))
    buffer = f"federation: {runs} -> .*"
    outputs = "|".join(re.escape(name) for name in (RESULTS_EXCHANGE, RUNS_DEAD_LETTER_EXCHANGE))
    return {
        "configure": f"^{buffer}$",
        "write": f"^({buffer}|{outputs})$",
        "read": f"^({buffer}|{runs})$",
    }


#: Routing keys a region may publish on home's ``seymour.results`` (a topic exchange, so the broker
#: enforces it): its runners' results (alone or batched), heartbeats and the runs they received too late
#: (``run.missed``). A key missing here would wedge the region's results shovel on the first such message.
REGION_RESULT_KEYS: Final = (CHECK_COMPLETED, CHECK_COMPLETED_BATCH, RUNNER_HEARTBEAT, RUN_MISSED)


def account_plan(home: BrokerAddress, region: str, username: str, password: str) -> list[Step]:
    """Every request that gives ``region`` its own least-privilege account on home. Idempotent; a new
    ``password`` replaces the old one.

    Also declares ``seymour.runs.<region>`` and binds it to ``seymour.runs`` with the region's key: the
    account reads that exchange only (see :func:`region_permissions`).
    """
    v = home.quoted_vhost
    keys = "|".join(re.escape(key) for key in REGION_RESULT_KEYS)
    return [
        Step("PUT", f"/api/users/{q(username)}", {"password": password, "tags": ""}, "region account"),
        Step("PUT", f"/api/permissions/{v}/{q(username)}", region_permissions(region), "permissions"),
        Step(
            "PUT",
            f"/api/topic-permissions/{v}/{q(username)}",
            {"exchange": RESULTS_EXCHANGE, "write": f"^({keys})$", "read": "^$"},
            "topic permissions",
        ),
        *region_exchange_plan(home, region),
        *home_plan(home),
    ]


def region_exchange_plan(home: BrokerAddress, region: str) -> list[Step]:
    """Home's ``seymour.runs.<region>``, bound from ``seymour.runs`` with the region's key (the exchange
    the region's federation link reads), and the removal of a pre-upgrade link's buffer. Idempotent."""
    v = home.quoted_vhost
    exchange = region_runs_exchange(check_region(region))
    return [
        *(
            Step("PUT", f"/api/exchanges/{v}/{q(name)}", {"type": "direct", "durable": True}, "exchange")
            for name in (RUNS_EXCHANGE, exchange)
        ),
        Step(
            "POST",
            f"/api/bindings/{v}/e/{q(RUNS_EXCHANGE)}/e/{q(exchange)}",
            {"routing_key": region},
            "binding",
        ),
        # The buffer of a link made before regions had their own exchange: bound to seymour.runs, it
        # would keep a copy of every run of the region, and dead-letter each as missed on expiry.
        Step(
            "DELETE",
            f"/api/queues/{v}/{q(f'federation: {RUNS_EXCHANGE} -> {cluster_name(region)}')}",
            what="legacy buffer",
            missing_ok=True,
        ),
    ]


def home_plan(home: BrokerAddress) -> list[Step]:
    """The one thing home needs per vhost (not per region): runs expiring in a buffer are dead-lettered."""
    return [
        Step(
            "PUT",
            f"/api/policies/{home.quoted_vhost}/{q(HOME_BUFFER_POLICY)}",
            {
                "pattern": HOME_BUFFER_PATTERN,
                "definition": {"dead-letter-exchange": RUNS_DEAD_LETTER_EXCHANGE},
                "apply-to": "queues",
                "priority": 10,
            },
            "home buffer policy",
        )
    ]


__all__ = [
    "REGION_RESULT_KEYS",
    "BrokerAddress",
    "HomeTls",
    "RegionLink",
    "Step",
    "account_plan",
    "check_region",
    "cluster_name",
    "home_buffer_queue",
    "home_plan",
    "redact",
    "region_exchange_plan",
    "region_permissions",
]
