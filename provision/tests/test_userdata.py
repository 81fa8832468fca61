"""Boot scripts rendered without AWS: valid shell, everything filled in, nothing unsafe pasted in."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from provision.plan import Config, ConfigError
from provision.userdata import (
    TemplateError,
    fargate_runner_command,
    home_user_data,
    render,
    runner_user_data,
)

CFG = Config(deployment="demo", home_region="eu-west-1", regions=("eu-north-1",), release="2.0.1")
RDS = Config(deployment="demo", home_region="eu-west-1", regions=(), release="2.0.1", home_db="rds")

SCRIPTS = {
    "runner": runner_user_data(CFG, "eu-north-1"),
    "home-instance-db": home_user_data(CFG),
    "home-rds": home_user_data(RDS),
    "fargate-runner": fargate_runner_command(CFG, "eu-north-1"),
}


@pytest.mark.parametrize("name", list(SCRIPTS), ids=list(SCRIPTS))
def test_script_is_valid_shell_with_every_placeholder_filled(name: str) -> None:
    script = SCRIPTS[name]
    assert "{{" not in script
    assert "2.0.1" in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("runner", "rabbitmq_management,rabbitmq_federation,rabbitmq_shovel"),
        ("runner", "ExecStart=/opt/seymour/bin/seymour serve runner --region eu-north-1"),
        ("runner", "SEYMOUR_REGION=$REGION"),
        ("home-instance-db", "dnf install -y postgresql15-server"),
        ("home-instance-db", "DB_HOST=127.0.0.1"),
        ("home-rds", '--db-instance-identifier "$DB_INSTANCE_ID"'),
        ("home-rds", "DB_INSTANCE_ID='seymour-demo-home'"),
        ("home-rds", "/opt/seymour/bin/seymour migrate"),
        ("fargate-runner", 'pip install --no-cache-dir "seymour==2.0.1"'),
        ("fargate-runner", "exec seymour serve runner --region eu-north-1"),
        (
            "fargate-runner",
            'export SEYMOUR_BROKER_URL="amqp://seymour:$SEYMOUR_LOCAL_PASSWORD@localhost:5672/"',
        ),
    ],
    ids=[
        "runner-plugins",
        "runner-starts-runner",
        "runner-region-env",
        "home-installs-postgres",
        "home-local-db",
        "home-finds-rds",
        "home-rds-id",
        "home-migrates",
        "fargate-pinned",
        "fargate-starts-runner",
        "fargate-broker-url",
    ],
)
def test_script_does_what_it_must(name: str, expected: str) -> None:
    assert expected in SCRIPTS[name]


def test_home_on_rds_does_not_install_postgres_server_or_use_localhost() -> None:
    script = SCRIPTS["home-rds"]
    assert "HOME_DB='rds'" in script
    assert 'if [ "$HOME_DB" = instance ]; then dnf install -y postgresql15-server; fi' in script


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"region": "eu-north-1; rm -rf /"}, "not shell-safe"),
        ({"region": "$(id)"}, "not shell-safe"),
        ({}, "no value for"),
    ],
    ids=["semicolon", "command-substitution", "missing"],
)
def test_render_refuses_what_is_not_safe_to_paste(values: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render("fargate-runner.sh", {"release": "1.0", **values})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"deployment": "Bad_Name"},
        {"home_region": "mars-1"},
        {"regions": ("us-east-1", "us-east-1")},
        {"release": "1.0; echo"},
    ],
    ids=["deployment", "region", "repeated-region", "release"],
)
def test_config_rejects_what_cannot_be_provisioned(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "deployment": "ok",
        "home_region": "eu-west-1",
        "regions": ("us-east-1",),
        "release": "1",
    }
    with pytest.raises(ConfigError):
        Config(**{**base, **kwargs})
