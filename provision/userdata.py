"""User-data and container scripts, rendered from the ``templates/*.sh`` shipped with the package."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

from provision.plan import HOME_SERVICES, RABBITMQ_IMAGE, Config

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
#: Values pasted into shell scripts: names, regions, versions, image tags, parameter paths. No quoting needed.
_SAFE = re.compile(r"^[A-Za-z0-9._:/@+=, -]*$")


class TemplateError(ValueError):
    """A template names a value that was not given, or a value is not safe to paste into shell."""


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with every ``{{name}}`` replaced; every name must be given and shell-safe."""
    text = resources.files("provision").joinpath("templates", template).read_text()

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise TemplateError(f"{template}: no value for {{{{{key}}}}}")
        value = values[key]
        if not _SAFE.match(value):
            raise TemplateError(f"{template}: value of {key} is not shell-safe: {value!r}")
        return value

    return _PLACEHOLDER.sub(substitute, text)


def runner_user_data(cfg: Config, region: str) -> str:
    """Boot script of a region's EC2 runner: installs and starts its broker, federation link and runner."""
    return render(
        "runner.sh",
        {
            "deployment": cfg.deployment,
            "region": region,
            "param_region": cfg.home_region,
            "home_url_param": cfg.home_url_param(),
            "home_ca_param": cfg.home_ca_param(),
            "home_server_name": cfg.home_server_name,
            "home_password_param": cfg.region_password_param(region),
            "local_password_param": cfg.local_password_param(region),
            "release": cfg.release,
            "rabbitmq_image": RABBITMQ_IMAGE,
        },
    )


def home_user_data(cfg: Config) -> str:
    """Boot script of the home: broker (TLS for the regions), PostgreSQL or RDS, the services."""
    return render(
        "home.sh",
        {
            "deployment": cfg.deployment,
            "region": cfg.home_region,
            "param_prefix": cfg.param_prefix,
            "release": cfg.release,
            "home_db": cfg.home_db,
            "db_instance_id": cfg.db_instance_id(),
            "rabbitmq_image": RABBITMQ_IMAGE,
            "services": " ".join(HOME_SERVICES),
        },
    )


def fargate_runner_command(cfg: Config, region: str) -> str:
    """The runner container's ``sh -c`` script; its secrets arrive as environment variables from SSM."""
    return render(
        "fargate-runner.sh",
        {"region": region, "release": cfg.release, "home_server_name": cfg.home_server_name},
    ).strip()
