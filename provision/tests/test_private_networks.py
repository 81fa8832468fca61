"""Provisioned hosts block private and loopback networks for checks and alerts (``seymour up`` does not)."""

from __future__ import annotations

import pytest

from provision.plan import Config
from provision.userdata import fargate_runner_command, home_user_data, runner_user_data

CFG = Config(deployment="demo", home_region="eu-west-1", regions=("eu-north-1",), release="2.0.1")
SCRIPTS = {
    "runner": (runner_user_data(CFG, "eu-north-1"), "SEYMOUR_BLOCK_PRIVATE_NETWORKS=true\n"),
    "home": (home_user_data(CFG), "SEYMOUR_BLOCK_PRIVATE_NETWORKS=true\n"),
    "fargate-runner": (
        fargate_runner_command(CFG, "eu-north-1"),
        "export SEYMOUR_BLOCK_PRIVATE_NETWORKS=true\nexec seymour serve runner",
    ),
}


@pytest.mark.parametrize("name", list(SCRIPTS), ids=list(SCRIPTS))
def test_provisioned_hosts_block_private_networks(name: str) -> None:
    script, line = SCRIPTS[name]
    assert line in script
