"""Links verify home: a third RabbitMQ node plays a home with an AMQPS listener; the region's federation
and shovels reach it only when its certificate chains to the CA the region was given and names the
server the region expects. Anyone else presenting a certificate (another CA, another name) is refused.

Before, links used ``amqps://`` with no CA, no ``verify_peer`` and no server name: any certificate
was accepted, so whoever sat on the path could pose as home.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.topology import region_user
from provision.tls import issue_server, make_ca
from services.cli.region import connect, grant
from services.common.region_management import ManagementApi
from services.common.region_topology import BrokerAddress, HomeTls, RegionLink
from tests.federation.world import REGION
from tests.support.rabbit_node import RABBIT_BIN, RabbitNode

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]

HOME_NAME = "seymour-home.test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The deployment's CA and home's certificate from it; another CA nobody told the region about."""
    base = tmp_path_factory.mktemp("pki")
    ca, stranger = make_ca("seymour test deployment CA"), make_ca("someone else's CA")
    server = issue_server(ca, HOME_NAME)
    files = {
        "ca": ca.cert,
        "other-ca": stranger.cert,
        "home-cert": server.cert,
        "home-key": server.key,
    }
    paths = {}
    for name, text in files.items():
        paths[name] = base / f"{name}.pem"
        paths[name].write_text(text)
    return paths


@pytest.fixture(scope="module")
def tls_home(pki: dict[str, Path]) -> Iterator[RabbitNode]:
    """A home broker presenting the certificate the deployment's CA issued for ``HOME_NAME``."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.skip("RabbitMQ server not installed")
    node = RabbitNode(
        Path(tempfile.mkdtemp(prefix="seymour-tls-home-")), tls=(pki["home-cert"], pki["home-key"])
    )
    try:
        node.start()
        yield node
    finally:
        node.stop()


CASES = [
    ("deployment-ca-and-home-name", "ca", HOME_NAME, True),
    ("certificate-from-another-ca", "other-ca", HOME_NAME, False),
    ("certificate-for-another-name", "ca", "not-home.test", False),
]


@pytest.mark.parametrize(
    ("trusted", "server_name", "connects"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_links_reach_only_the_home_whose_certificate_verifies(
    tls_home: RabbitNode,
    region_node: RabbitNode,
    region_vhost: str,
    pki: dict[str, Path],
    trusted: str,
    server_name: str,
    connects: bool,
) -> None:
    admin = BrokerAddress.parse(f"amqp://guest:guest@127.0.0.1:{tls_home.amqp_port}/", tls_home.api_url)
    user, password = region_user(REGION, uuid.uuid4().hex[:8]), uuid.uuid4().hex
    await grant(REGION, admin, user, password)
    home = BrokerAddress.parse(f"amqps://{user}:{password}@127.0.0.1:{tls_home.amqps_port}/")
    local = BrokerAddress.parse(region_node.amqp_url(region_vhost), region_node.api_url)
    tls = HomeTls(ca_file=str(pki[trusted]), server_name=server_name)
    if connects:
        states = await connect(REGION, home, local, tls=tls, reconnect_delay=1.0, wait=30.0)
        assert set(states.values()) == {"running"}
        return
    with pytest.raises(TimeoutError):
        await connect(REGION, home, local, tls=tls, reconnect_delay=1.0, wait=8.0)
    async with ManagementApi(local) as api:
        links = await api.get(f"/api/federation-links/{local.quoted_vhost}") or []
        shovels = await api.get(f"/api/shovels/{local.quoted_vhost}") or []
    assert [link.get("status") for link in links] != ["running"]
    assert all(shovel.get("state") != "running" for shovel in shovels)
    async with ManagementApi(admin) as api:
        connections = await api.get("/api/connections") or []
    assert [c for c in connections if c.get("user") == user] == []


def test_an_amqps_home_without_a_ca_is_refused() -> None:
    home = BrokerAddress.parse("amqps://seymour-eu-north-1:pw@home.example.com:5671/")
    local = BrokerAddress.parse("amqp://guest:guest@127.0.0.1:5672/")
    with pytest.raises(ValueError, match="--home-ca"):
        RegionLink(REGION, home, local)
    link = RegionLink(REGION, home, local, tls=HomeTls("/etc/rabbitmq/tls/home-ca.pem", "seymour-home.prod"))
    assert link.upstream()["uri"] == (
        "amqps://seymour-eu-north-1:pw@home.example.com:5671/%2F?cacertfile=/etc/rabbitmq/tls/home-ca.pem"
        "&verify=verify_peer&server_name_indication=seymour-home.prod"
    )
    assert link.shovel("q", "x")["dest-uri"] == link.upstream()["uri"]
