"""The desired deployment as data: settings, the names of every resource, and the tags that find them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Compute = Literal["ec2", "fargate"]
HomeDb = Literal["rds", "instance"]
Role = Literal["home", "runner"]

TAG_DEPLOYMENT: Final = "seymour:deployment"
TAG_REGION: Final = "seymour:region"
TAG_ROLE: Final = "seymour:role"
TAG_MANAGED: Final = "seymour:managed"
#: A digest of what a replaceable resource (instance, task definition) was made from.
TAG_CONFIG: Final = "seymour:config"

#: The services the home runs (the runners run in the regions).
HOME_SERVICES: Final = ("api", "scheduler", "router", "results", "alerts")
RABBITMQ_IMAGE: Final = "rabbitmq:3.13-alpine"
RUNNER_IMAGE: Final = "python:3.12-slim"
AL2023_ARM64_PARAMETER: Final = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_RELEASE = re.compile(r"^[A-Za-z0-9.+!-]{1,40}$")


class ConfigError(ValueError):
    """The command line asks for something that cannot be provisioned."""


@dataclass(frozen=True)
class Config:
    """What the operator asked for."""

    deployment: str
    home_region: str
    regions: tuple[str, ...]
    release: str
    compute: Compute = "ec2"
    spot: bool = True
    instance_type: str = "t4g.micro"
    home_instance_type: str = "t4g.small"
    home_db: HomeDb = "instance"
    #: AMI overrides: region → image id; the key ``*`` applies to every region without its own.
    amis: Mapping[str, str] = field(default_factory=dict)
    #: Who may reach the web UI (port 8000) on the home instance; nobody when empty.
    ui_cidrs: tuple[str, ...] = ()
    #: Where the regions' links come from (their NAT gateways or Elastic IPs), for home's AMQPS port;
    #: anywhere when empty, as spot runners and Fargate tasks have no fixed address.
    broker_cidrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.deployment):
            raise ConfigError(f"deployment {self.deployment!r}: lower-case letters, digits and '-', ≤ 31")
        for region in (self.home_region, *self.regions):
            if not _REGION.match(region):
                raise ConfigError(f"{region!r} is not an AWS region code")
        if len(set(self.regions)) != len(self.regions):
            raise ConfigError("regions must not repeat")
        if not _RELEASE.match(self.release):
            raise ConfigError(f"release {self.release!r} is not a version")
        for cidr in (*self.ui_cidrs, *self.broker_cidrs):
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ConfigError(f"{cidr!r} is not a network (e.g. 203.0.113.0/24)") from None

    def ami_for(self, region: str) -> str | None:
        """The operator's AMI for this region, if they chose one."""
        return self.amis.get(region) or self.amis.get("*")

    # Names. IAM is global, so its names carry the region; everything else lives in its region.
    def name(self, role: Role, region: str) -> str:
        """The Name of a region's resources (security group, instance, cluster, service …)."""
        return (
            f"seymour-{self.deployment}-{role}" if role == "home" else f"seymour-{self.deployment}-{region}"
        )

    def iam_name(self, role: Role, region: str) -> str:
        return f"seymour-{self.deployment}-{role}-{region}"

    @property
    def iam_path(self) -> str:
        return f"/seymour/{self.deployment}/"

    @property
    def param_prefix(self) -> str:
        """SSM parameters all live in the home region under this path."""
        return f"/seymour/{self.deployment}"

    def home_url_param(self) -> str:
        return f"{self.param_prefix}/broker/home-url"

    def region_password_param(self, region: str) -> str:
        """The region's password on the home broker (user ``seymour-<region>``)."""
        return f"{self.param_prefix}/broker/{region}/password"

    def local_password_param(self, region: str) -> str:
        """The password of the region's own broker (user ``seymour``)."""
        return f"{self.param_prefix}/broker/{region}/local-password"

    def home_ca_param(self) -> str:
        """The deployment CA's certificate (String): regions verify home's broker against it."""
        return f"{self.param_prefix}/broker/home-ca"

    def home_tls_params(self) -> tuple[str, str]:
        """Home broker's certificate (String) and key (SecureString), issued by the deployment CA."""
        return f"{self.param_prefix}/home/tls-cert", f"{self.param_prefix}/home/tls-key"

    @property
    def home_server_name(self) -> str:
        """The name in home's certificate, which regions verify (home is reached by IP address)."""
        return f"seymour-home.{self.deployment}"

    def home_secret_params(self) -> tuple[str, ...]:
        return tuple(
            f"{self.param_prefix}/home/{name}"
            for name in ("broker-password", "db-password", "admin-password", "secret-key")
        )

    def db_instance_id(self) -> str:
        return f"seymour-{self.deployment}-home"

    def tags(self, role: Role, region: str, **extra: str) -> dict[str, str]:
        """Every resource carries these; ``down`` and ``status`` find resources by them."""
        return {
            TAG_DEPLOYMENT: self.deployment,
            TAG_REGION: region,
            TAG_ROLE: role,
            TAG_MANAGED: "true",
            "Name": self.name(role, region),
            **extra,
        }


def tag_list(tags: Mapping[str, str]) -> list[Any]:
    """EC2/IAM/SSM/RDS spelling of tags."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def ecs_tag_list(tags: Mapping[str, str]) -> list[Any]:
    """ECS spelling of tags."""
    return [{"key": key, "value": value} for key, value in tags.items()]
