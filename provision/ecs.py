"""ECS on Fargate Spot: a cluster, a task definition (broker + runner containers), a service keeping it up."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from provision.context import PLANNED, Ctx
from provision.ec2 import config_digest
from provision.plan import RABBITMQ_IMAGE, RUNNER_IMAGE, TAG_CONFIG, ecs_tag_list

CAPACITY_PROVIDER = "FARGATE_SPOT"
TASK_CPU = "256"
TASK_MEMORY = "1024"
#: Where the broker container keeps the deployment CA (``seymour region connect --home-ca``).
FARGATE_HOME_CA: Final = "/etc/rabbitmq/home-ca.pem"
#: Fargate Spot runs only x86_64 tasks (Graviton is on-demand only), so Fargate runners are x86_64.
CPU_ARCHITECTURE: Final = "X86_64"


def task_containers(ctx: Ctx, *, param_arn: str, runner_script: str) -> list[dict[str, Any]]:
    """The broker and the runner, sharing the task's network namespace (awsvpc: localhost is shared).

    Secrets reach the containers through ECS ``secrets`` (SSM parameter ARNs, resolved by the
    execution role at start); the task definition itself holds none.
    """
    region = ctx.region
    cfg = ctx.cfg
    return [
        {
            "name": "broker",
            "image": RABBITMQ_IMAGE,
            "essential": True,
            "memory": 512,
            "command": [
                "sh",
                "-c",
                # The deployment CA, for the links to verify home (RabbitMQ reads it from this file).
                f"printf '%s\\n' \"$SEYMOUR_HOME_CA\" > {FARGATE_HOME_CA} && rabbitmq-plugins enable"
                " --offline rabbitmq_management rabbitmq_federation rabbitmq_shovel"
                " && exec docker-entrypoint.sh rabbitmq-server",
            ],
            "environment": [{"name": "RABBITMQ_DEFAULT_USER", "value": "seymour"}],
            "secrets": [
                {
                    "name": "RABBITMQ_DEFAULT_PASS",
                    "valueFrom": f"{param_arn}{cfg.local_password_param(region)}",
                },
                {"name": "SEYMOUR_HOME_CA", "valueFrom": f"{param_arn}{cfg.home_ca_param()}"},
            ],
            "healthCheck": {
                "command": ["CMD-SHELL", "rabbitmq-diagnostics -q ping"],
                "interval": 10,
                "timeout": 5,
                "retries": 12,
                "startPeriod": 30,
            },
        },
        {
            "name": "runner",
            "image": RUNNER_IMAGE,
            "essential": True,
            "memory": 512,
            "dependsOn": [{"containerName": "broker", "condition": "HEALTHY"}],
            "command": ["sh", "-c", runner_script],
            "environment": [
                {"name": "SEYMOUR_REGION", "value": region},
            ],
            "secrets": [
                {"name": "SEYMOUR_HOME_URL", "valueFrom": f"{param_arn}{cfg.home_url_param()}"},
                {
                    "name": "SEYMOUR_HOME_PASSWORD",
                    "valueFrom": f"{param_arn}{cfg.region_password_param(region)}",
                },
                {
                    "name": "SEYMOUR_LOCAL_PASSWORD",
                    "valueFrom": f"{param_arn}{cfg.local_password_param(region)}",
                },
            ],
        },
    ]


def ensure_cluster(ctx: Ctx, name: str, tags: Mapping[str, str]) -> None:
    ecs = ctx.aws.ecs(ctx.region)
    clusters = [c for c in ecs.describe_clusters(clusters=[name])["clusters"] if c.get("status") == "ACTIVE"]
    if clusters:
        providers = clusters[0].get("capacityProviders", [])
        if CAPACITY_PROVIDER in providers:
            ctx.record("ok", "ecs-cluster", name)
            return
        ctx.record("update", "ecs-cluster", name, f"capacity provider {CAPACITY_PROVIDER}")
    else:
        ctx.record("create", "ecs-cluster", name, f"capacity provider {CAPACITY_PROVIDER}")
    if ctx.dry_run:
        return
    strategy: list[Any] = [{"capacityProvider": CAPACITY_PROVIDER, "weight": 1}]
    if clusters:
        ecs.put_cluster_capacity_providers(
            cluster=name,
            capacityProviders=["FARGATE", CAPACITY_PROVIDER],
            defaultCapacityProviderStrategy=strategy,
        )
    else:
        ecs.create_cluster(
            clusterName=name,
            capacityProviders=["FARGATE", CAPACITY_PROVIDER],
            defaultCapacityProviderStrategy=strategy,
            tags=ecs_tag_list(tags),
        )


def ensure_task_definition(
    ctx: Ctx,
    family: str,
    *,
    containers: Sequence[Mapping[str, Any]],
    execution_role_arn: str,
    tags: Mapping[str, str],
) -> str:
    """The family's latest active revision when it was built from these settings, else a new revision."""
    ecs = ctx.aws.ecs(ctx.region)
    digest = config_digest(
        json.dumps(list(containers), sort_keys=True), execution_role_arn, TASK_CPU, TASK_MEMORY
    )
    arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")["taskDefinitionArns"]
    if arns:
        described = ecs.describe_task_definition(taskDefinition=arns[0], include=["TAGS"])
        if {t["key"]: t["value"] for t in described.get("tags", [])}.get(TAG_CONFIG) == digest:
            ctx.record("ok", "ecs-task-definition", arns[0].rsplit("/", 1)[-1])
            return arns[0]
    ctx.record(
        "update" if arns else "create",
        "ecs-task-definition",
        family,
        f"{CPU_ARCHITECTURE} {TASK_CPU} CPU / {TASK_MEMORY} MiB",
    )
    if ctx.dry_run:
        return PLANNED
    registered = ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu=TASK_CPU,
        memory=TASK_MEMORY,
        runtimePlatform={"cpuArchitecture": CPU_ARCHITECTURE, "operatingSystemFamily": "LINUX"},
        executionRoleArn=execution_role_arn,
        containerDefinitions=list(containers),  # type: ignore[arg-type]
        tags=ecs_tag_list({**tags, TAG_CONFIG: digest}),
    )
    arn = registered["taskDefinition"]["taskDefinitionArn"]
    for old in arns:
        ecs.deregister_task_definition(taskDefinition=old)
    return arn


def ensure_service(
    ctx: Ctx,
    cluster: str,
    name: str,
    *,
    task_definition: str,
    subnets: Sequence[str],
    security_group: str,
    tags: Mapping[str, str],
) -> None:
    """A service keeping one task running on Fargate Spot (an interrupted task is replaced by ECS)."""
    ecs = ctx.aws.ecs(ctx.region)
    found = []
    if _cluster_exists(ctx, cluster):
        services = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
        found = [s for s in services if s.get("status") == "ACTIVE"]
    if found:
        if found[0].get("taskDefinition") == task_definition:
            ctx.record("ok", "ecs-service", name, f"desired {found[0].get('desiredCount')}")
            return
        ctx.record("update", "ecs-service", name, f"task definition → {task_definition.rsplit('/', 1)[-1]}")
        if ctx.applying:
            ecs.update_service(cluster=cluster, service=name, taskDefinition=task_definition, desiredCount=1)
        return
    ctx.record("create", "ecs-service", name, f"1 task on {CAPACITY_PROVIDER}, awsvpc, public IP for egress")
    if ctx.applying:
        ecs.create_service(
            cluster=cluster,
            serviceName=name,
            taskDefinition=task_definition,
            desiredCount=1,
            capacityProviderStrategy=[{"capacityProvider": CAPACITY_PROVIDER, "weight": 1}],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(subnets),
                    "securityGroups": [security_group],
                    "assignPublicIp": "ENABLED",
                }
            },
            tags=ecs_tag_list(tags),
            propagateTags="SERVICE",
        )


def _cluster_exists(ctx: Ctx, cluster: str) -> bool:
    described = ctx.aws.ecs(ctx.region).describe_clusters(clusters=[cluster])["clusters"]
    return any(c.get("status") == "ACTIVE" for c in described)


def delete(ctx: Ctx, cluster: str, family: str) -> None:
    """Delete the service(s), every revision of the task definition, and the cluster."""
    ecs = ctx.aws.ecs(ctx.region)
    if _cluster_exists(ctx, cluster):
        for arn in ecs.list_services(cluster=cluster)["serviceArns"]:
            ctx.record("delete", "ecs-service", arn.rsplit("/", 1)[-1])
            if ctx.applying:
                _untag(ctx, arn)
                ecs.delete_service(cluster=cluster, service=arn, force=True)
        for task in ecs.list_tasks(cluster=cluster)["taskArns"]:
            ctx.record("delete", "ecs-task", task.rsplit("/", 1)[-1])
            if ctx.applying:
                ecs.stop_task(cluster=cluster, task=task, reason="seymour-provision down")
    active = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    inactive = ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    revisions = [*active, *inactive]
    for arn in revisions:
        ctx.record("delete", "ecs-task-definition", arn.rsplit("/", 1)[-1])
        if ctx.applying and arn in active:
            ecs.deregister_task_definition(taskDefinition=arn)
    if ctx.applying and revisions:
        for start in range(0, len(revisions), 10):
            ecs.delete_task_definitions(taskDefinitions=revisions[start : start + 10])
    if _cluster_exists(ctx, cluster):
        ctx.record("delete", "ecs-cluster", cluster)
        if ctx.applying:
            described = ecs.describe_clusters(clusters=[cluster])["clusters"]
            for arn in (c["clusterArn"] for c in described if "clusterArn" in c):
                _untag(ctx, arn)
            ecs.delete_cluster(cluster=cluster)


def _untag(ctx: Ctx, arn: str) -> None:
    """Deleted services and clusters linger as INACTIVE with their tags: take the tags off first."""
    ecs = ctx.aws.ecs(ctx.region)
    keys = [t["key"] for t in ecs.list_tags_for_resource(resourceArn=arn).get("tags", []) if "key" in t]
    if keys:
        ecs.untag_resource(resourceArn=arn, tagKeys=keys)
