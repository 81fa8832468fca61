"""Everything tagged with a deployment, read straight from AWS (moto): what the tests compare and count."""

from __future__ import annotations

from collections.abc import Iterable

import boto3

TAG = "seymour:deployment"


def tagged(deployment: str, regions: Iterable[str]) -> dict[str, list[str]]:
    """Every resource of every type seymour-provision makes, tagged with ``deployment``, by kind."""
    found: dict[str, list[str]] = {}

    def add(kind: str, ident: str) -> None:
        found.setdefault(kind, []).append(ident)

    flt = [{"Name": f"tag:{TAG}", "Values": [deployment]}]
    for region in sorted(set(regions)):
        ec2 = boto3.client("ec2", region_name=region)
        for reservation in ec2.describe_instances(Filters=flt)["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] != "terminated":
                    add("instance", f"{region}/{instance['InstanceId']}")
        for group in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]:
            add("security-group", f"{region}/{group['GroupId']}")
        for address in ec2.describe_addresses(Filters=flt)["Addresses"]:
            add("elastic-ip", f"{region}/{address['AllocationId']}")
        for volume in ec2.describe_volumes(Filters=flt)["Volumes"]:
            add("volume", f"{region}/{volume['VolumeId']}")
        for vpc in ec2.describe_vpcs(Filters=flt)["Vpcs"]:
            add("vpc", f"{region}/{vpc['VpcId']}")
        ecs = boto3.client("ecs", region_name=region)
        clusters = ecs.list_clusters()["clusterArns"]
        for cluster in (
            ecs.describe_clusters(clusters=clusters, include=["TAGS"])["clusters"] if clusters else []
        ):
            if cluster["status"] == "ACTIVE" and _has(cluster.get("tags", []), deployment, "key", "value"):
                add("ecs-cluster", f"{region}/{cluster['clusterName']}")
                for arn in ecs.list_services(cluster=cluster["clusterArn"])["serviceArns"]:
                    add("ecs-service", f"{region}/{arn}")
        for status in ("ACTIVE", "INACTIVE"):
            for arn in ecs.list_task_definitions(status=status)["taskDefinitionArns"]:
                tags = ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])
                if _has(tags, deployment, "key", "value"):
                    add("ecs-task-definition", f"{region}/{arn}")
        rds = boto3.client("rds", region_name=region)
        for db in rds.describe_db_instances()["DBInstances"]:
            if _has(db.get("TagList", []), deployment):
                add("rds-instance", f"{region}/{db['DBInstanceIdentifier']}")
        ssm = boto3.client("ssm", region_name=region)
        pages = ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": f"tag:{TAG}", "Values": [deployment]}]
        )
        for param in (p for page in pages for p in page["Parameters"]):
            add("ssm-parameter", f"{region}{param['Name']}")
        tagging = boto3.client("resourcegroupstaggingapi", region_name=region)
        for resource in tagging.get_resources(TagFilters=[{"Key": TAG, "Values": [deployment]}])[
            "ResourceTagMappingList"
        ]:
            add("tagging-api", resource["ResourceARN"])
    iam = boto3.client("iam")
    for role in iam.list_roles()["Roles"]:
        if _has(iam.list_role_tags(RoleName=role["RoleName"])["Tags"], deployment):
            add("iam-role", role["RoleName"])
    for profile in iam.list_instance_profiles()["InstanceProfiles"]:
        if _has(profile.get("Tags", []), deployment) or f"/seymour/{deployment}/" == profile["Path"]:
            add("iam-instance-profile", profile["InstanceProfileName"])
    return {kind: sorted(ids) for kind, ids in found.items()}


def _has(tags: Iterable[dict[str, str]], deployment: str, key: str = "Key", value: str = "Value") -> bool:
    return any(t[key] == TAG and t[value] == deployment for t in tags)


def counts(regions: Iterable[str]) -> dict[str, int]:
    """How many resources of each kind exist at all (any tag) — a plan must not change these."""
    out: dict[str, int] = {}
    for region in sorted(set(regions)):
        ec2 = boto3.client("ec2", region_name=region)
        out[f"{region}/instances"] = sum(
            len(r["Instances"]) for r in ec2.describe_instances()["Reservations"]
        )
        out[f"{region}/security-groups"] = len(ec2.describe_security_groups()["SecurityGroups"])
        out[f"{region}/addresses"] = len(ec2.describe_addresses()["Addresses"])
        ssm = boto3.client("ssm", region_name=region)
        names = [
            p["Name"]
            for page in ssm.get_paginator("describe_parameters").paginate()
            for p in page["Parameters"]
        ]
        out[f"{region}/parameters"] = len([n for n in names if not n.startswith("/aws/")])
        out[f"{region}/clusters"] = len(
            boto3.client("ecs", region_name=region).list_clusters()["clusterArns"]
        )
    iam = boto3.client("iam")
    out["roles"] = len(iam.list_roles()["Roles"])
    out["instance-profiles"] = len(iam.list_instance_profiles()["InstanceProfiles"])
    return out
