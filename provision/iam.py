"""IAM: one role per region and role, with an inline policy that reads only that region's parameters."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from provision.context import Ctx
from provision.plan import TAG_DEPLOYMENT, TAG_REGION, tag_list

INLINE_POLICY = "seymour"
ECS_TASK_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def read_parameters(ctx: Ctx, names: Sequence[str], *, by_path: str | None = None) -> dict[str, Any]:
    """A policy allowing ``ssm:GetParameter(s)`` on exactly these parameters (and one path if given).

    SecureStrings use the account's ``aws/ssm`` key, whose key policy already lets SSM decrypt for
    principals of the account, so no ``kms:*`` is granted.
    """
    arn = f"arn:aws:ssm:{ctx.cfg.home_region}:{ctx.aws.account_id(ctx.cfg.home_region)}:parameter"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadOwnParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": [f"{arn}{name}" for name in sorted(names)],
        }
    ]
    if by_path is not None:
        statements.append(
            {
                "Sid": "ReadParameterTree",
                "Effect": "Allow",
                "Action": ["ssm:GetParametersByPath"],
                "Resource": [f"{arn}{by_path}", f"{arn}{by_path}/*"],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "NoSuchEntity"


def ensure_role(
    ctx: Ctx,
    name: str,
    *,
    service: str,
    policy: Mapping[str, Any],
    managed: Sequence[str] = (),
    tags: Mapping[str, str],
) -> None:
    """The role exists with this trust, exactly this inline policy and exactly these managed policies."""
    iam = ctx.aws.iam()
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if not _missing(error):
            raise
        ctx.record("create", "iam-role", name, f"trusts {service}")
        if ctx.applying:
            iam.create_role(
                RoleName=name,
                Path=ctx.cfg.iam_path,
                AssumeRolePolicyDocument=json.dumps(trust(service)),
                Description=f"Seymour {ctx.role} in {ctx.region}",
                Tags=tag_list(tags),
            )
        existing_policy: Any = None
        attached: set[str] = set()
    else:
        if role.get("AssumeRolePolicyDocument") != trust(service):
            ctx.record("update", "iam-role", name, f"trust → {service}")
            if ctx.applying:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust(service)))
        else:
            ctx.record("ok", "iam-role", name)
        try:
            existing_policy = iam.get_role_policy(RoleName=name, PolicyName=INLINE_POLICY)["PolicyDocument"]
        except ClientError as error:
            if not _missing(error):
                raise
            existing_policy = None
        attached = {
            p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        }

    if existing_policy == policy:
        ctx.record("ok", "iam-policy", f"{name}/{INLINE_POLICY}")
    else:
        ctx.record("create" if existing_policy is None else "update", "iam-policy", f"{name}/{INLINE_POLICY}")
        if ctx.applying:
            iam.put_role_policy(RoleName=name, PolicyName=INLINE_POLICY, PolicyDocument=json.dumps(policy))
    for arn in sorted(set(managed) & attached):
        ctx.record("ok", "iam-attachment", f"{name} ← {arn.rsplit('/', 1)[-1]}")
    for arn in sorted(set(managed) - attached):
        ctx.record("create", "iam-attachment", f"{name} ← {arn.rsplit('/', 1)[-1]}")
        if ctx.applying:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    for arn in sorted(attached - set(managed)):
        ctx.record("delete", "iam-attachment", f"{name} ← {arn.rsplit('/', 1)[-1]}")
        if ctx.applying:
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)


def ensure_instance_profile(ctx: Ctx, name: str, *, role: str, tags: Mapping[str, str]) -> None:
    """An instance profile of the same name holding exactly ``role``."""
    iam = ctx.aws.iam()
    try:
        roles = [
            r["RoleName"]
            for r in iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
        ]
    except ClientError as error:
        if not _missing(error):
            raise
        ctx.record("create", "iam-instance-profile", name)
        if ctx.applying:
            iam.create_instance_profile(InstanceProfileName=name, Path=ctx.cfg.iam_path, Tags=tag_list(tags))
        roles = []
    else:
        if roles == [role]:
            ctx.record("ok", "iam-instance-profile", name)
            return
        ctx.record("update", "iam-instance-profile", name, f"role → {role}")
    if ctx.applying:
        for other in roles:
            iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=other)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)


def _region_of(tags: Sequence[Mapping[str, object]]) -> tuple[str | None, str | None]:
    found = {str(t["Key"]): str(t["Value"]) for t in tags}
    return found.get(TAG_DEPLOYMENT), found.get(TAG_REGION)


def roles(ctx: Ctx) -> dict[str, str]:
    """This deployment's roles (found under its IAM path, confirmed by tag) → their region tag."""
    iam = ctx.aws.iam()
    out: dict[str, str] = {}
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=ctx.cfg.iam_path):
        for role in page["Roles"]:
            try:
                tags = iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
            except ClientError as error:
                if _missing(error):  # deleted meanwhile by another region's worker
                    continue
                raise
            deployment, region = _region_of(tags)
            if deployment == ctx.cfg.deployment and region:
                out[role["RoleName"]] = region
    return out


def profiles(ctx: Ctx) -> dict[str, str]:
    """This deployment's instance profiles → their region tag."""
    iam = ctx.aws.iam()
    out: dict[str, str] = {}
    for page in iam.get_paginator("list_instance_profiles").paginate(PathPrefix=ctx.cfg.iam_path):
        for profile in page["InstanceProfiles"]:
            try:
                found = iam.get_instance_profile(InstanceProfileName=profile["InstanceProfileName"])
            except ClientError as error:
                if _missing(error):  # deleted meanwhile by another region's worker
                    continue
                raise
            tags = found["InstanceProfile"].get("Tags", [])
            deployment, region = _region_of(tags)
            if deployment == ctx.cfg.deployment and region:
                out[profile["InstanceProfileName"]] = region
    return out


def delete(ctx: Ctx, region: str) -> None:
    """Delete this deployment's instance profiles and roles that belong to ``region``."""
    iam = ctx.aws.iam()
    for name, where in sorted(profiles(ctx).items()):
        if where != region:
            continue
        ctx.record("delete", "iam-instance-profile", name)
        if ctx.applying:
            for role in iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]:
                iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
            iam.delete_instance_profile(InstanceProfileName=name)
    for name, where in sorted(roles(ctx).items()):
        if where != region:
            continue
        ctx.record("delete", "iam-role", name)
        if ctx.applying:
            for profile in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
                iam.remove_role_from_instance_profile(
                    InstanceProfileName=profile["InstanceProfileName"], RoleName=name
                )
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=name)
