"""What up, plan, status and down do in one region, and running every region at once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from provision import ec2, ecs, iam, rds, ssm
from provision.aws import Aws
from provision.context import PLANNED, Ctx, ProvisionError
from provision.ec2 import ALL_EGRESS, InstanceSpec, Rule, tcp
from provision.plan import Config, Role
from provision.report import RegionResult, Reporter
from provision.userdata import fargate_runner_command, home_user_data, runner_user_data

log = logging.getLogger(__name__)

ANYWHERE = "0.0.0.0/0"
#: Runners only call out: HTTPS (packages, images, AWS APIs, and the checks they run) and AMQPS to home.
#: DNS and NTP go to the VPC's own resolver and time service, which security groups do not filter.
RUNNER_EGRESS = (tcp(443, cidr=ANYWHERE), tcp(5671, cidr=ANYWHERE))
HOME_BROKER_PORT = 5671
UI_PORT = 8000

Work = Callable[[Ctx], None]
ROLES: tuple[Role, ...] = ("home", "runner")


def provision_runner(ctx: Ctx) -> None:
    """A region's broker and runner: secrets, IAM, security group, then an instance or a Fargate service."""
    cfg, region = ctx.cfg, ctx.region
    tags = cfg.tags("runner", region)
    ssm.ensure_secret(ctx, cfg.region_password_param(region), tags)
    ssm.ensure_secret(ctx, cfg.local_password_param(region), tags)
    role = cfg.iam_name("runner", region)
    policy = iam.read_parameters(
        ctx,
        [
            cfg.home_url_param(),
            cfg.home_ca_param(),
            cfg.region_password_param(region),
            cfg.local_password_param(region),
        ],
    )
    if cfg.compute == "ec2":
        iam.ensure_role(ctx, role, service="ec2.amazonaws.com", policy=policy, tags=tags)
        iam.ensure_instance_profile(ctx, role, role=role, tags=tags)
    else:
        iam.ensure_role(
            ctx,
            role,
            service="ecs-tasks.amazonaws.com",
            policy=policy,
            managed=[iam.ECS_TASK_EXECUTION_POLICY],
            tags=tags,
        )
    vpc = ec2.default_vpc(ctx)
    group = ec2.ensure_security_group(
        ctx,
        cfg.name("runner", region),
        vpc=vpc,
        description=f"Seymour runner {region}: no inbound, outbound HTTPS and AMQPS only",
        ingress=(),
        egress=RUNNER_EGRESS,
        tags=tags,
    )
    name = cfg.name("runner", region)
    if cfg.compute == "ec2":
        ecs.delete(ctx, name, name)
        spec = InstanceSpec(
            name=name,
            instance_type=cfg.instance_type,
            image=ec2.resolve_ami(ctx),
            user_data=runner_user_data(cfg, region),
            security_group=group,
            profile=role,
            spot=cfg.spot,
            tags=tags,
        )
        ec2.ensure_instance(ctx, spec)
        return
    _remove_instances(ctx, "runner")
    ecs.ensure_cluster(ctx, name, tags)
    account = ctx.aws.account_id(cfg.home_region)
    containers = ecs.task_containers(
        ctx,
        param_arn=f"arn:aws:ssm:{cfg.home_region}:{account}:parameter",
        runner_script=fargate_runner_command(cfg, region),
    )
    task = ecs.ensure_task_definition(
        ctx,
        name,
        containers=containers,
        execution_role_arn=f"arn:aws:iam::{account}:role{cfg.iam_path}{role}",
        tags=tags,
    )
    subnets = ec2.default_subnets(ctx, vpc)
    ecs.ensure_service(
        ctx, name, name, task_definition=task, subnets=subnets, security_group=group, tags=tags
    )


def provision_home(ctx: Ctx) -> None:
    """The home: secrets, IAM, security groups, the database choice, a stable address and the instance."""
    cfg, region = ctx.cfg, ctx.region
    tags = cfg.tags("home", region)
    for name in cfg.home_secret_params():
        ssm.ensure_secret(ctx, name, tags)
    ssm.ensure_home_tls(ctx, tags)
    role = cfg.iam_name("home", region)
    policy: dict[str, Any] = iam.read_parameters(
        ctx, (*cfg.home_secret_params(), *cfg.home_tls_params()), by_path=f"{cfg.param_prefix}/broker"
    )
    if cfg.home_db == "rds":
        account = ctx.aws.account_id(region)
        policy["Statement"].append(
            {
                "Sid": "FindDatabase",
                "Effect": "Allow",
                "Action": ["rds:DescribeDBInstances"],
                "Resource": [f"arn:aws:rds:{region}:{account}:db:{cfg.db_instance_id()}"],
            }
        )
    iam.ensure_role(ctx, role, service="ec2.amazonaws.com", policy=policy, tags=tags)
    iam.ensure_instance_profile(ctx, role, role=role, tags=tags)
    vpc = ec2.default_vpc(ctx)
    home_name = cfg.name("home", region)
    # Home calls out to anything (packages, alert webhooks, SMTP on any port): all egress.
    # Inbound: AMQPS from the regions (spot runners have no fixed address) and the UI from --ui-cidr.
    group = ec2.ensure_security_group(
        ctx,
        home_name,
        vpc=vpc,
        description="Seymour home: AMQPS from the regions, the UI from chosen networks",
        ingress=(
            *(tcp(HOME_BROKER_PORT, cidr=cidr) for cidr in cfg.broker_cidrs or (ANYWHERE,)),
            *(tcp(UI_PORT, cidr=cidr) for cidr in cfg.ui_cidrs),
        ),
        egress=(ALL_EGRESS,),
        tags=tags,
    )
    if cfg.home_db == "rds":
        db_group = ec2.ensure_security_group(
            ctx,
            f"{home_name}-db",
            vpc=vpc,
            description="Seymour home database: PostgreSQL from the home instance only",
            ingress=(Rule("tcp", 5432, 5432, group=group),),
            egress=(),
            tags=tags,
        )
        rds.ensure_db(
            ctx,
            cfg.db_instance_id(),
            password_param=cfg.home_secret_params()[1],
            security_group=db_group,
            tags=tags,
        )
    allocation, public_ip = ec2.ensure_elastic_ip(ctx, home_name, tags)
    ssm.ensure_value(ctx, cfg.home_url_param(), f"amqps://{public_ip}:{HOME_BROKER_PORT}/", tags)
    spec = InstanceSpec(
        name=home_name,
        instance_type=cfg.home_instance_type,
        image=ec2.resolve_ami(ctx),
        user_data=home_user_data(cfg),
        security_group=group,
        profile=role,
        spot=False,
        tags=tags,
    )
    instance = ec2.ensure_instance(ctx, spec)
    ec2.ensure_association(ctx, allocation, instance)


def _remove_instances(ctx: Ctx, role: Role) -> None:
    stale = [i["InstanceId"] for i in ec2.find_instances(ctx, role)]
    for instance in stale:
        ctx.record("delete", "ec2-instance", instance, "compute is fargate now")
    if ctx.applying and stale:
        ctx.aws.ec2(ctx.region).terminate_instances(InstanceIds=stale)


def teardown(ctx: Ctx) -> None:
    """Delete everything of the deployment in this region, its parameters and its IAM, found by tags."""
    cfg, region = ctx.cfg, ctx.region
    client = ctx.aws.ec2(region)
    runner = cfg.name("runner", region)
    ecs.delete(ctx, runner, runner)
    instances = [i["InstanceId"] for role in ROLES for i in ec2.find_instances(ctx, role)]
    for instance in instances:
        ctx.record("delete", "ec2-instance", instance)
    if ctx.applying and instances:
        client.terminate_instances(InstanceIds=instances)
        ec2.wait_terminated(client, instances)
        ec2.untag_terminated(ctx, instances)
    for address in client.describe_addresses(Filters=ec2.deployment_filters(ctx))["Addresses"]:
        ctx.record("delete", "elastic-ip", f"{address.get('PublicIp')}")
        if ctx.applying:
            if address.get("AssociationId"):
                client.disassociate_address(AssociationId=address["AssociationId"])
            client.release_address(AllocationId=address["AllocationId"])
    rds.delete(ctx, cfg.db_instance_id())
    groups = client.describe_security_groups(Filters=ec2.deployment_filters(ctx))["SecurityGroups"]
    if ctx.applying:
        # Rules that name another group (the database's) must go before that group can.
        for group in groups:
            if group.get("IpPermissions"):
                client.revoke_security_group_ingress(
                    GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
                )
    for group in groups:
        ctx.record("delete", "security-group", f"{group['GroupName']} {group['GroupId']}")
        if ctx.applying:
            client.delete_security_group(GroupId=group["GroupId"])
    ssm.delete(ctx, region)
    iam.delete(ctx, region)


#: What a complete region has, per role: (kind, how to tell it is there).
def inspect(ctx: Ctx) -> None:
    """Record every resource of the deployment found in this region (and its parameters and IAM)."""
    cfg, region = ctx.cfg, ctx.region
    client = ctx.aws.ec2(region)
    roles_seen: set[Role] = set()
    compute_seen: set[Role] = set()
    for role in ROLES:
        for instance in ec2.find_instances(ctx, role):
            roles_seen.add(role)
            compute_seen.add(role)
            market = instance.get("InstanceLifecycle", "on-demand")
            address = instance.get("PublicIpAddress", "-")
            detail = f"{instance['State']['Name']}, {instance.get('InstanceType')}, {market}, ip {address}"
            ctx.record("found", "ec2-instance", f"{cfg.name(role, region)} {instance['InstanceId']}", detail)
    for group in client.describe_security_groups(Filters=ec2.deployment_filters(ctx))["SecurityGroups"]:
        ctx.record("found", "security-group", f"{group['GroupName']} {group['GroupId']}")
    for address in client.describe_addresses(Filters=ec2.deployment_filters(ctx))["Addresses"]:
        ctx.record(
            "found", "elastic-ip", str(address.get("PublicIp")), f"→ {address.get('InstanceId', 'nothing')}"
        )
    runner = cfg.name("runner", region)
    services = (
        ctx.aws.ecs(region).describe_services(cluster=runner, services=[runner]).get("services", [])
        if _has_cluster(ctx, runner)
        else []
    )
    for service in services:
        if service.get("status") == "ACTIVE":
            compute_seen.add("runner")
            roles_seen.add("runner")
            detail = (
                f"running {service.get('runningCount', 0)}/{service.get('desiredCount', 0)} on Fargate Spot"
            )
            ctx.record("found", "ecs-service", runner, detail)
    if region == cfg.home_region:
        status = rds.status(ctx, cfg.db_instance_id())
        if status is not None:
            ctx.record("found", "rds-instance", cfg.db_instance_id(), status)
    params = ssm.tagged(ctx, region)
    home_params = (
        cfg.home_url_param(),
        cfg.home_ca_param(),
        *cfg.home_secret_params(),
        *cfg.home_tls_params(),
    )
    for name in params:
        ctx.record("found", "ssm-parameter", name)
        roles_seen.add("home" if name in home_params else "runner")
    for name, where in sorted(iam.roles(ctx).items()):
        if where == region:
            ctx.record("found", "iam-role", name)
    for role in sorted(roles_seen - compute_seen):
        ctx.record("missing", "compute", cfg.name(role, region), "run `up` again")


def _has_cluster(ctx: Ctx, name: str) -> bool:
    return any(
        c.get("status") == "ACTIVE"
        for c in ctx.aws.ecs(ctx.region).describe_clusters(clusters=[name])["clusters"]
    )


def discover_regions(aws: Aws, cfg: Config) -> list[str]:
    """Regions holding any of the deployment's resources, found by the tags on its parameters and roles."""
    ctx = Ctx(aws, cfg, cfg.home_region, "home", True, Reporter(), RegionResult(cfg.home_region, "home"))
    found = ssm.regions_in_use(ctx) | set(iam.roles(ctx).values()) | set(iam.profiles(ctx).values())
    return sorted(found | {cfg.home_region})


def run_all(
    aws: Aws,
    cfg: Config,
    jobs: Sequence[tuple[str, Role, Work]],
    *,
    dry_run: bool,
    reporter: Reporter,
    max_workers: int = 8,
) -> list[RegionResult]:
    """Run each (region, role, work) in parallel; a failure is recorded for its region, others go on."""

    def one(region: str, role: Role, work: Work) -> RegionResult:
        result = RegionResult(region, role)
        ctx = Ctx(aws, cfg, region, role, dry_run, reporter, result)
        try:
            work(ctx)
        except (ProvisionError, ClientError, BotoCoreError) as error:
            result.error = str(error)
            reporter.line(ctx.label, f"✗ failed: {error}")
            log.warning("region failed region=%s role=%s error=%s", region, role, type(error).__name__)
        return result

    if not jobs:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, min(max_workers, len(jobs))), thread_name_prefix="region"
    ) as pool:
        futures = [pool.submit(one, region, role, work) for region, role, work in jobs]
        return [future.result() for future in futures]


__all__ = [
    "PLANNED",
    "discover_regions",
    "inspect",
    "provision_home",
    "provision_runner",
    "run_all",
    "teardown",
]
