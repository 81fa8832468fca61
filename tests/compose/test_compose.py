"""``compose/`` is consistent with the code: commands exist in the CLI, env vars are settings, ports and
healthchecks agree, dependencies point at real services, and the slim runner image can run its commands.

Docker cannot run on these machines, so this reads the files the way ``docker compose`` would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from compose.runner_requirements import name_of, runner_requirements
from services.cli import parser
from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose" / "docker-compose.yml"
DOCKERFILE = ROOT / "compose" / "Dockerfile"
SPEC: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
SERVICES: dict[str, dict[str, Any]] = SPEC["services"]
OURS = sorted(name for name, service in SERVICES.items() if "build" in service)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def container_ports(service: dict[str, Any]) -> dict[int, int]:
    """Container port → host port."""
    out = {}
    for mapping in service.get("ports", []):
        host, _, container = str(mapping).rpartition(":")
        out[int(container)] = int(host.rpartition(":")[2])
    return out


def test_ports_are_published_on_loopback_only_and_no_login_has_a_default_password() -> None:
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} on every interface"
        env = env_of(service)
        for key in ("SEYMOUR_ADMIN_PASSWORD", "SEYMOUR_API_TOKEN", "GF_SECURITY_ADMIN_PASSWORD"):
            assert key not in env, f"{name} ships a default {key}"


def test_every_process_of_the_system_is_there() -> None:
    commands = {name: SERVICES[name]["command"] for name in OURS}
    served = {cmd[1] for cmd in commands.values() if cmd[0] == "serve"}
    assert served == {"api", "scheduler", "router", "results", "alerts", "runner"}
    assert {"postgres", "rabbit-home", "rabbit-region"} <= set(SERVICES)


@pytest.mark.parametrize("name", OURS, ids=OURS)
def test_command_exists_in_the_cli(name: str) -> None:
    command = SERVICES[name]["command"]
    args = parser().parse_args([str(part) for part in command])
    assert callable(args.func)


@pytest.mark.parametrize("name", OURS, ids=OURS)
def test_every_env_var_is_a_setting(name: str) -> None:
    fields = set(Settings.model_fields)
    env = env_of(SERVICES[name])
    unknown = [key for key in env if not key.startswith("SEYMOUR_") or key[8:].lower() not in fields]
    assert unknown == []
    Settings.model_validate({key[8:].lower(): value for key, value in env.items()})


@pytest.mark.parametrize("name", OURS, ids=OURS)
def test_urls_point_at_services_of_the_file(name: str) -> None:
    service = SERVICES[name]
    urls = [v for v in env_of(service).values() if "://" in v and "localhost" not in v]
    urls += [str(part) for part in service["command"] if "://" in str(part)]
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname in SERVICES, url
        target = SERVICES[parts.hostname]
        port = parts.port or {"amqp": 5672, "http": 80}.get(parts.scheme.split("+")[0], 5432)
        if parts.hostname.startswith("rabbit"):
            assert port in (5672, 15672), url
            assert port in container_ports(target), url
        if parts.hostname == "postgres":
            assert port == 5432


def test_ports_and_healthchecks_agree() -> None:
    host_ports = [port for service in SERVICES.values() for port in container_ports(service).values()]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"
    api = SERVICES["api"]
    port = int(env_of(api)["SEYMOUR_PORT"])
    assert port in container_ports(api)
    assert env_of(api)["SEYMOUR_HOST"] == "0.0.0.0"
    probe = " ".join(api["healthcheck"]["test"])
    assert f":{port}/healthz" in probe
    assert "/healthz" in _api_routes()
    for broker in ("rabbit-home", "rabbit-region"):
        conf = _rabbit_conf(SERVICES[broker])
        assert int(conf["listeners.tcp.default"]) == 5672 in container_ports(SERVICES[broker])
        assert int(conf["management.tcp.port"]) == 15672 in container_ports(SERVICES[broker])
        plugins = _plugins(SERVICES[broker])
        assert {"rabbitmq_management", "rabbitmq_federation", "rabbitmq_shovel"} <= plugins
        assert SERVICES[broker]["healthcheck"]["test"]


def test_dependencies_wait_for_what_they_need() -> None:
    for name, service in SERVICES.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, it has none"
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} is a one-shot job"
    assert "region-connect" in SERVICES["runner"]["depends_on"]
    assert "migrate" in SERVICES["api"]["depends_on"]


def test_runner_is_attached_to_the_region_broker_only() -> None:
    runner = SERVICES["runner"]
    broker = urllib.parse.urlsplit(env_of(runner)["SEYMOUR_BROKER_URL"]).hostname
    assert broker == "rabbit-region"
    assert "SEYMOUR_DATABASE_URL" not in env_of(runner)
    connect = [str(part) for part in SERVICES["region-connect"]["command"]]
    region = env_of(runner)["SEYMOUR_REGION"]
    assert connect[:3] == ["region", "connect", region]
    assert urllib.parse.urlsplit(connect[connect.index("--local") + 1]).hostname == "rabbit-region"
    assert urllib.parse.urlsplit(connect[connect.index("--home") + 1]).hostname == "rabbit-home"


def test_dockerfile_is_slim_non_root_and_has_the_targets_compose_builds() -> None:
    text = DOCKERFILE.read_text()
    stages = {stage: image for image, stage in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)}
    targets = {SERVICES[name]["build"]["target"] for name in OURS}
    assert targets <= set(stages)
    assert stages["base"].endswith("-slim")
    for stage in targets:
        body = text.split(f"AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert re.search(r"^USER (?!root)\S+", body, re.M), f"stage {stage} runs as root"
    for name in OURS:
        assert SERVICES[name]["build"]["dockerfile"] == "compose/Dockerfile"
        assert (COMPOSE.parent / SERVICES[name]["build"]["context"]).resolve() == ROOT


#: What the runner image leaves out (distribution → module).
LEFT_OUT = {
    "litestar": "litestar",
    "uvicorn": "uvicorn",
    "jinja2": "jinja2",
    "asyncpg": "asyncpg",
    "aiosqlite": "aiosqlite",
    "apscheduler": "apscheduler",
    "argon2-cffi": "argon2",
    "boto3": "boto3",
}


def test_runner_image_runs_its_commands_without_the_api_dependencies() -> None:
    runner_stage = DOCKERFILE.read_text().split("AS runner\n", 1)[1].split("\nFROM ", 1)[0]
    assert not re.findall(r'"([A-Za-z0-9_.-]+)[\[<>=]', runner_stage), "pins come from pyproject.toml only"
    assert "runner_requirements.py" in runner_stage
    installed = {name_of(req) for req in runner_requirements(ROOT / "pyproject.toml")}
    assert not installed & set(LEFT_OUT), "the runner image installs an api dependency"
    excluded = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["seymour"][
        "runner-image-excludes"
    ]
    assert sorted(excluded) == sorted(LEFT_OUT), "every excluded dependency is blocked below, and only those"
    commands = [SERVICES[name]["command"] for name in OURS if SERVICES[name]["build"]["target"] == "runner"]
    script = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(LEFT_OUT.values())!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
from services.cli import parser
for command in {commands!r}:
    parser().parse_args([str(c) for c in command])
import services.runner.main, services.cli.region, services.runtime
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def _rabbit_conf(service: dict[str, Any]) -> dict[str, str]:
    return dict(
        line.split(" = ", 1)
        for line in _mounted(service, "/etc/rabbitmq/rabbitmq.conf").read_text().splitlines()
        if " = " in line and not line.startswith("#")
    )


def _plugins(service: dict[str, Any]) -> set[str]:
    text = _mounted(service, "/etc/rabbitmq/enabled_plugins").read_text()
    return set(re.findall(r"rabbitmq_[a-z_]+", text))


def _mounted(service: dict[str, Any], target: str) -> Path:
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            return COMPOSE.parent / source
    raise AssertionError(f"{target} is not mounted")


def _api_routes() -> set[str]:
    source = (ROOT / "services" / "api" / "app.py").read_text()
    return set(re.findall(r'@get\("([^"]+)"', source))


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue  # one-shot jobs
        assert "healthcheck" in service, f"{name} has no healthcheck"
        probe = [str(part) for part in service["healthcheck"]["test"]]
        if probe[1:3] == ["seymour", "health"]:
            assert "SEYMOUR_HEALTH_FILE" in env_of(service), f"{name} probes a health file it never writes"
            parser().parse_args(probe[2:])


PROMETHEUS = COMPOSE.parent / "prometheus" / "prometheus.yml"
DASHBOARD = COMPOSE.parent / "grafana" / "dashboards" / "seymour.json"


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    for name in OURS:
        if SERVICES[name].get("restart") == "no":
            continue
        env = env_of(SERVICES[name])
        assert env.get("SEYMOUR_METRICS_HOST") == "0.0.0.0", f"{name}'s metrics are reachable from prometheus"
        assert f"{name}:{env['SEYMOUR_METRICS_PORT']}" in targets, f"prometheus scrapes {name}"
    assert "prometheus" in SERVICES
    assert "grafana" in SERVICES


def test_the_dashboard_graphs_only_metrics_the_services_export() -> None:
    import json

    from prometheus_client import REGISTRY

    import services.common.metrics  # noqa: F401 - registers every metric

    exported = {sample for family in REGISTRY.collect() for sample in _names(family.name, family.type)}
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(seymour_[a-z_]+)", target["expr"])
    }
    assert used, "the dashboard graphs something"
    assert used <= exported, f"not exported by any service: {sorted(used - exported)}"
    panels = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("lag", "phases", "dead-lettered", "queue depth", "leader", "notification", "database"):
        assert topic in panels, f"no panel about {topic}"


def _names(name: str, kind: str) -> set[str]:
    if kind == "counter":
        return {name, f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return {name}
