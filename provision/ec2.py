"""EC2: security groups, the AMI, the instance (spot when allowed), the home's Elastic IP."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provision.context import PLANNED, Ctx, ProvisionError
from provision.plan import AL2023_ARM64_PARAMETER, TAG_CONFIG, TAG_DEPLOYMENT, TAG_ROLE, tag_list

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, IpPermissionOutputTypeDef, IpPermissionTypeDef

log = logging.getLogger(__name__)

LIVE_STATES = ("pending", "running", "stopping", "stopped")
#: Errors that mean "no spot here or now": the instance is launched on demand instead.
SPOT_UNAVAILABLE = frozenset(
    {
        "InsufficientInstanceCapacity",
        "MaxSpotInstanceCountExceeded",
        "SpotMaxPriceTooLow",
        "UnsupportedOperation",
        "InsufficientCapacityOnOutpost",
    }
)
#: A new instance profile takes a few seconds to be usable by EC2.
PROFILE_PROPAGATION_TRIES = 8
PROFILE_PROPAGATION_DELAY = 4.0


@dataclass(frozen=True, order=True)
class Rule:
    """One security-group rule: a protocol and port range from/to a CIDR block or another group."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str | None = None
    group: str | None = None

    def describe(self) -> str:
        ports = "all" if self.protocol == "-1" else f"{self.protocol}/{self.from_port}-{self.to_port}"
        return f"{ports} {self.cidr or self.group}"

    def permission(self) -> IpPermissionTypeDef:
        perm: IpPermissionTypeDef = {"IpProtocol": self.protocol}
        if self.protocol != "-1":
            perm["FromPort"] = self.from_port
            perm["ToPort"] = self.to_port
        if self.cidr is not None:
            perm["IpRanges"] = [{"CidrIp": self.cidr}]
        if self.group is not None:
            perm["UserIdGroupPairs"] = [{"GroupId": self.group}]
        return perm


def tcp(port: int, *, cidr: str | None = None, group: str | None = None) -> Rule:
    return Rule("tcp", port, port, cidr=cidr, group=group)


ALL_EGRESS = Rule("-1", -1, -1, cidr="0.0.0.0/0")


def _rules(permissions: Iterable[IpPermissionOutputTypeDef]) -> set[Rule]:
    out: set[Rule] = set()
    for perm in permissions:
        protocol = str(perm.get("IpProtocol", "-1"))
        low = -1 if protocol == "-1" else int(perm.get("FromPort", -1))
        high = -1 if protocol == "-1" else int(perm.get("ToPort", -1))
        out.update(Rule(protocol, low, high, cidr=r["CidrIp"]) for r in perm.get("IpRanges", []))
        out.update(Rule(protocol, low, high, group=p["GroupId"]) for p in perm.get("UserIdGroupPairs", []))
    return out


def deployment_filters(ctx: Ctx, **tags: str) -> list[FilterTypeDef]:
    filters: list[FilterTypeDef] = [{"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [ctx.cfg.deployment]}]
    filters.extend({"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items())
    return filters


def default_vpc(ctx: Ctx) -> str:
    """The region's default VPC."""
    vpcs = ctx.aws.ec2(ctx.region).describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise ProvisionError(f"no default VPC in {ctx.region}: create one with `aws ec2 create-default-vpc`")
    return vpcs[0]["VpcId"]


def default_subnets(ctx: Ctx, vpc: str) -> list[str]:
    """The default VPC's default subnets (one per availability zone, with public addresses)."""
    subnets = ctx.aws.ec2(ctx.region).describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    return sorted(s["SubnetId"] for s in subnets)


def ensure_security_group(
    ctx: Ctx,
    name: str,
    *,
    vpc: str,
    description: str,
    ingress: Sequence[Rule],
    egress: Sequence[Rule],
    tags: Mapping[str, str],
) -> str:
    """A group with exactly these rules; extra rules (including AWS's default all-egress) are revoked."""
    ec2 = ctx.aws.ec2(ctx.region)
    found = ec2.describe_security_groups(
        Filters=[
            *deployment_filters(ctx),
            {"Name": "group-name", "Values": [name]},
            {"Name": "vpc-id", "Values": [vpc]},
        ]
    )["SecurityGroups"]
    if not found:
        rules = ", ".join(r.describe() for r in sorted(egress)) or "none"
        ctx.record("create", "security-group", name, f"egress {rules}; ingress {len(ingress)} rule(s)")
        if ctx.dry_run:
            return PLANNED
        group_id = ec2.create_security_group(
            GroupName=name,
            Description=description,
            VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(tags)}],
        )["GroupId"]
        have_in: set[Rule] = set()
        have_out = {ALL_EGRESS}
    else:
        group_id = found[0]["GroupId"]
        have_in = _rules(found[0].get("IpPermissions", []))
        have_out = _rules(found[0].get("IpPermissionsEgress", []))
    want_in, want_out = set(ingress), set(egress)
    if found and (have_in, have_out) == (want_in, want_out):
        ctx.record("ok", "security-group", name)
        return group_id
    if found:
        changes = [f"+{r.describe()}" for r in sorted((want_in - have_in) | (want_out - have_out))]
        changes += [f"-{r.describe()}" for r in sorted((have_in - want_in) | (have_out - want_out))]
        ctx.record("update", "security-group", name, ", ".join(changes))
    if ctx.applying:
        if want_out - have_out:
            ec2.authorize_security_group_egress(
                GroupId=group_id, IpPermissions=[r.permission() for r in sorted(want_out - have_out)]
            )
        if have_out - want_out:
            ec2.revoke_security_group_egress(
                GroupId=group_id, IpPermissions=[r.permission() for r in sorted(have_out - want_out)]
            )
        if want_in - have_in:
            ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=[r.permission() for r in sorted(want_in - have_in)]
            )
        if have_in - want_in:
            ec2.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=[r.permission() for r in sorted(have_in - want_in)]
            )
    return group_id


def resolve_ami(ctx: Ctx) -> str:
    """The operator's AMI, else the latest Amazon Linux 2023 arm64; checked to exist and be arm64."""
    ec2 = ctx.aws.ec2(ctx.region)
    image = ctx.cfg.ami_for(ctx.region)
    if image is None:
        try:
            image = ctx.aws.ssm(ctx.region).get_parameter(Name=AL2023_ARM64_PARAMETER)["Parameter"]["Value"]
        except ClientError:
            images = ec2.describe_images(
                Owners=["amazon"],
                Filters=[
                    {"Name": "name", "Values": ["al2023-ami-2023.*-kernel-*-arm64"]},
                    {"Name": "architecture", "Values": ["arm64"]},
                    {"Name": "state", "Values": ["available"]},
                ],
            )["Images"]
            if not images:
                raise ProvisionError(
                    f"no Amazon Linux 2023 arm64 image found in {ctx.region}; pass --ami"
                ) from None
            image = max(images, key=lambda i: str(i.get("CreationDate", "")))["ImageId"]
    try:
        described = ec2.describe_images(ImageIds=[image])["Images"]
    except ClientError as error:
        raise ProvisionError(f"AMI {image} not usable in {ctx.region}: {error}") from error
    if not described:
        raise ProvisionError(f"AMI {image} does not exist in {ctx.region}")
    if described[0].get("Architecture") != "arm64":
        raise ProvisionError(
            f"AMI {image} is {described[0].get('Architecture')}, the instance types are arm64"
        )
    return image


def config_digest(*parts: str) -> str:
    """What a replaceable resource was built from, short enough for a tag value."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def find_instances(ctx: Ctx, role: str) -> list[dict[str, Any]]:
    ec2 = ctx.aws.ec2(ctx.region)
    out: list[dict[str, Any]] = []
    filters: list[FilterTypeDef] = [
        *deployment_filters(ctx, **{TAG_ROLE: role}),
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            out.extend(dict(instance) for instance in reservation.get("Instances", []))
    return out


@dataclass(frozen=True)
class InstanceSpec:
    """Everything an instance is launched from."""

    name: str
    instance_type: str
    image: str
    user_data: str
    security_group: str
    profile: str
    spot: bool
    tags: Mapping[str, str]

    def digest(self) -> str:
        # The AMI is left out on purpose: a newer Amazon Linux release is not a reason to replace a runner.
        return config_digest(self.instance_type, self.user_data, self.profile, str(self.spot))


def ensure_instance(ctx: Ctx, spec: InstanceSpec) -> str:
    """One live instance built from ``spec``; an instance built from something else is replaced."""
    role = spec.tags[TAG_ROLE]
    current = find_instances(ctx, role)
    digest = spec.digest()
    matching = [
        i for i in current if {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get(TAG_CONFIG) == digest
    ]
    keep = matching[0] if matching else None
    stale = [i["InstanceId"] for i in current if i is not keep]
    if keep is not None:
        ctx.record("ok", "ec2-instance", f"{spec.name} {keep['InstanceId']}", str(keep["State"]["Name"]))
    if stale:
        ctx.record(
            "replace" if keep is None else "delete",
            "ec2-instance",
            f"{spec.name} {' '.join(stale)}",
            "built from other settings",
        )
        if ctx.applying:
            ctx.aws.ec2(ctx.region).terminate_instances(InstanceIds=stale)
    if keep is not None:
        return str(keep["InstanceId"])
    market = "spot" if spec.spot else "on-demand"
    if not stale:
        ctx.record("create", "ec2-instance", spec.name, f"{spec.instance_type} {market} {spec.image}")
    if ctx.dry_run:
        return PLANNED
    return _launch(ctx, spec, digest)


def _launch(ctx: Ctx, spec: InstanceSpec, digest: str) -> str:
    ec2 = ctx.aws.ec2(ctx.region)
    tags = tag_list({**spec.tags, TAG_CONFIG: digest})
    args: dict[str, Any] = {
        "ImageId": spec.image,
        "InstanceType": spec.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": spec.user_data,
        "SecurityGroupIds": [spec.security_group],
        "IamInstanceProfile": {"Name": spec.profile},
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    spot = spec.spot
    for attempt in range(PROFILE_PROPAGATION_TRIES):
        launch = dict(args)
        if spot:
            launch["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
            }
        try:
            return str(ec2.run_instances(**launch)["Instances"][0]["InstanceId"])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if spot and code in SPOT_UNAVAILABLE:
                ctx.record(
                    "update", "ec2-instance", spec.name, f"spot unavailable ({code}), launching on demand"
                )
                spot = False
                continue
            if (
                code == "InvalidParameterValue"
                and "iamInstanceProfile" in message
                and attempt + 1 < PROFILE_PROPAGATION_TRIES
            ):
                log.info("instance profile not visible yet region=%s attempt=%d", ctx.region, attempt + 1)
                time.sleep(PROFILE_PROPAGATION_DELAY)
                continue
            raise
    raise ProvisionError(f"instance profile {spec.profile} never became usable")


def user_data_of(ctx: Ctx, instance_id: str) -> str:
    """The user-data an instance was launched with, decoded."""
    raw = ctx.aws.ec2(ctx.region).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(raw.get("UserData", {}).get("Value", "")).decode()


def ensure_elastic_ip(ctx: Ctx, name: str, tags: Mapping[str, str]) -> tuple[str, str]:
    """The home's stable public address: (allocation id, public IP)."""
    ec2 = ctx.aws.ec2(ctx.region)
    found = ec2.describe_addresses(Filters=deployment_filters(ctx, **{TAG_ROLE: tags[TAG_ROLE]}))["Addresses"]
    if found:
        ctx.record("ok", "elastic-ip", f"{name} {found[0]['PublicIp']}")
        return str(found[0]["AllocationId"]), str(found[0]["PublicIp"])
    ctx.record("create", "elastic-ip", name)
    if ctx.dry_run:
        return PLANNED, "<new elastic ip>"
    allocated = ec2.allocate_address(
        Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tag_list(tags)}]
    )
    return str(allocated["AllocationId"]), str(allocated["PublicIp"])


def ensure_association(ctx: Ctx, allocation: str, instance: str) -> None:
    ec2 = ctx.aws.ec2(ctx.region)
    if ctx.dry_run and PLANNED in (allocation, instance):
        ctx.record("create", "elastic-ip-association", f"{allocation} → {instance}")
        return
    address = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    if address.get("InstanceId") == instance:
        ctx.record("ok", "elastic-ip-association", f"{address['PublicIp']} → {instance}")
        return
    ctx.record(
        "update" if address.get("InstanceId") else "create",
        "elastic-ip-association",
        f"{address['PublicIp']} → {instance}",
    )
    if ctx.applying:
        ec2.associate_address(AllocationId=allocation, InstanceId=instance, AllowReassociation=True)


def wait_terminated(ec2: EC2Client, ids: Sequence[str]) -> None:
    if ids:
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=list(ids), WaiterConfig={"Delay": 5, "MaxAttempts": 120}
        )


def untag_terminated(ctx: Ctx, ids: Sequence[str]) -> None:
    """Terminated instances stay listed for up to an hour; without their tags nothing finds them as ours."""
    ec2 = ctx.aws.ec2(ctx.region)
    keys = sorted(
        {t["Key"] for i in find_all(ctx, ids) for t in i.get("Tags", []) if t["Key"].startswith("seymour:")}
    )
    try:
        ec2.delete_tags(Resources=list(ids), Tags=[{"Key": key} for key in keys])
    except ClientError as error:
        log.info("could not untag terminated instances region=%s error=%s", ctx.region, error)


def find_all(ctx: Ctx, ids: Sequence[str]) -> list[dict[str, Any]]:
    reservations = ctx.aws.ec2(ctx.region).describe_instances(InstanceIds=list(ids))["Reservations"]
    return [dict(instance) for r in reservations for instance in r.get("Instances", [])]
