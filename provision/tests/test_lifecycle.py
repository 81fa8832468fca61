"""seymour-provision against moto: plan changes nothing, up converges, a re-run is a no-op, down cleans up."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import boto3

from provision.tests.inventory import counts, tagged

HOME = "eu-west-1"
REGIONS = ("us-east-1", "eu-north-1", "ap-south-1")
RELEASE = "1.2.3"


def _summary(out: str) -> dict[str, str]:
    """region → outcome word from the summary block."""
    block = out.split("\n\n")[-1]
    rows = re.findall(r"^  (\S+)\s+(home|runner)\s+(\w+)", block, flags=re.M)
    return {f"{region}/{role}": outcome for region, role, outcome in rows}


def _secrets(deployment: str) -> list[str]:
    ssm = boto3.client("ssm", region_name=HOME)
    pages = ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "tag:seymour:deployment", "Values": [deployment]}]
    )
    names = [p["Name"] for page in pages for p in page["Parameters"] if p["Type"] == "SecureString"]
    return [ssm.get_parameter(Name=n, WithDecryption=True)["Parameter"]["Value"] for n in names]


def _user_data(region: str, deployment: str, role: str) -> str:
    ec2 = boto3.client("ec2", region_name=region)
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:seymour:deployment", "Values": [deployment]},
            {"Name": "tag:seymour:role", "Values": [role]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    (instance,) = [i for r in reservations for i in r["Instances"]]
    raw = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    return base64.b64decode(raw["UserData"]["Value"]).decode()


def _check_user_data(deployment: str, region: str, release: str) -> None:
    """The boot scripts install and start what they must, with the right names and URLs, and no secret."""
    secrets = _secrets(deployment)
    assert secrets
    runner = _user_data(region, deployment, "runner")
    home = _user_data(HOME, deployment, "home")
    for script in (runner, home):
        assert script.startswith("#!/bin/bash")
        assert "{{" not in script
        for secret in secrets:
            assert secret not in script
        assert 'pip install --no-cache-dir "seymour==$RELEASE"' in script
        assert f"RELEASE='{release}'" in script
        assert "rabbitmq:3.13" in script
        assert "--with-decryption" in script
    assert f"REGION='{region}'" in runner
    assert f"PARAM_REGION='{HOME}'" in runner
    assert f"HOME_URL_PARAM='/seymour/{deployment}/broker/home-url'" in runner
    assert f"HOME_PASSWORD_PARAM='/seymour/{deployment}/broker/{region}/password'" in runner
    assert "SEYMOUR_BROKER_URL=amqp://seymour:$LOCAL_PASSWORD@localhost:5672/" in runner
    assert f"ExecStart=/opt/seymour/bin/seymour serve runner --region {region}" in runner
    assert f"seymour region connect {region} --home-ca" in runner
    exec_lines = [line for line in runner.splitlines() if line.startswith("ExecStart")]
    for line in exec_lines:
        assert "PASSWORD" not in line, f"a broker password would be in a process's argv: {line}"
        assert "SEYMOUR_CONNECT" not in line, f"systemd expands it into argv: {line}"
    assert "SEYMOUR_CONNECT_HOME=$HOME_SCHEME://seymour-$REGION:$HOME_PASSWORD@$HOME_REST" in runner
    assert f"--home-ca /etc/rabbitmq/tls/home-ca.pem --home-name seymour-home.{deployment}" in runner
    assert "-v /etc/seymour/rabbitmq/home-ca.pem:/etc/rabbitmq/tls/home-ca.pem:ro" in runner
    for unit in ("seymour-broker", "seymour-region-connect", "seymour-runner"):
        assert f"systemctl enable --now {unit}.service" in runner
    assert "-p 127.0.0.1:5672:5672" in runner
    assert "for service in api scheduler router results alerts;" in home
    assert "ExecStart=/opt/seymour/bin/seymour serve %i" in home
    assert "listeners.ssl.default = 5671" in home
    assert '| /opt/seymour/bin/seymour region grant "$region"' in home
    assert "'.*'" not in home
    assert "postgresql15-server" in home


def _check_runner_role(deployment: str, region: str) -> None:
    """The runner's role reads its own three parameters and nothing else."""
    iam = boto3.client("iam")
    role = f"seymour-{deployment}-runner-{region}"
    document = iam.get_role_policy(RoleName=role, PolicyName="seymour")["PolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Action"] == ["ssm:GetParameter", "ssm:GetParameters"]
    prefix = f"arn:aws:ssm:{HOME}:123456789012:parameter/seymour/{deployment}/broker"
    assert sorted(statement["Resource"]) == sorted(
        [
            f"{prefix}/home-url",
            f"{prefix}/home-ca",
            f"{prefix}/{region}/password",
            f"{prefix}/{region}/local-password",
        ]
    )
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def _check_home_certificate(deployment: str) -> None:
    """Regions get the deployment CA; home's certificate chains to it for the name regions verify; the
    key is a SecureString only home reads."""
    from cryptography import x509

    ssm = boto3.client("ssm", region_name=HOME)

    def param(name: str) -> dict[str, Any]:
        found: dict[str, Any] = ssm.get_parameter(Name=f"/seymour/{deployment}/{name}", WithDecryption=True)
        return found["Parameter"]

    ca = x509.load_pem_x509_certificate(param("broker/home-ca")["Value"].encode())
    cert = x509.load_pem_x509_certificate(param("home/tls-cert")["Value"].encode())
    assert param("home/tls-key")["Type"] == "SecureString"
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [f"seymour-home.{deployment}"]
    home = _user_data(HOME, deployment, "home")
    assert "openssl req" not in home
    assert 'param "$PARAM_PREFIX/home/tls-key" >/etc/seymour/rabbitmq/key.pem' in home
    role = boto3.client("iam").get_role_policy(
        RoleName=f"seymour-{deployment}-home-{HOME}", PolicyName="seymour"
    )
    readable = [r for st in role["PolicyDocument"]["Statement"] for r in st["Resource"]]
    assert any(r.endswith(f"/seymour/{deployment}/home/tls-key") for r in readable)


def test_plan_prints_every_resource_and_changes_nothing(cli: Any) -> None:
    before = counts((HOME, *REGIONS))
    run = cli("--deployment", "plan", "--home-region", HOME, "plan", "--regions", ",".join(REGIONS))
    assert run.code == 0, run.err
    assert counts((HOME, *REGIONS)) == before
    assert tagged("plan", (HOME, *REGIONS)) == {}
    for region in REGIONS:
        for kind in ("ssm-parameter", "iam-role", "iam-instance-profile", "security-group", "ec2-instance"):
            assert re.search(rf"^{region}\s+\+ {kind} .*: would create", run.out, flags=re.M), (region, kind)
    for kind in (
        "elastic-ip",
        "ec2-instance",
        "security-group",
        "ssm-parameter /seymour/plan/broker/home-url",
    ):
        assert re.search(rf"^{HOME} \(home\)\s+\+ {kind}.*would create", run.out, flags=re.M), kind
    assert re.findall(r"^  (\S+)\s+(?:home|runner)\s+(would change)", run.out, flags=re.M) == [
        (region, "would change") for region in (HOME, *REGIONS)
    ]
    assert "nothing was changed" in run.out


def test_ec2_up_rerun_status_down(cli: Any) -> None:
    deployment = "life"
    args = ("--deployment", deployment, "--home-region", HOME)
    up = cli(*args, "up", "--regions", ",".join(REGIONS), "--release", RELEASE)
    assert up.code == 0, up.out + up.err
    assert _summary(up.out) == {f"{HOME}/home": "changed", **{f"{r}/runner": "changed" for r in REGIONS}}
    made = tagged(deployment, (HOME, *REGIONS))
    assert len(made["instance"]) == 4
    assert len(made["security-group"]) == 4
    assert len(made["elastic-ip"]) == 1
    assert len(made["iam-role"]) == 4
    assert len(made["iam-instance-profile"]) == 4
    # 2 per region + home-url + 4 home secrets + CA and home certificate and key, all in the home region
    assert len(made["ssm-parameter"]) == 2 * len(REGIONS) + 8
    assert all(p.startswith(f"{HOME}/seymour/{deployment}/") for p in made["ssm-parameter"])

    for region in REGIONS:
        ec2 = boto3.client("ec2", region_name=region)
        (reservation,) = ec2.describe_instances(
            Filters=[{"Name": "tag:seymour:deployment", "Values": [deployment]}]
        )["Reservations"]
        instance = reservation["Instances"][0]
        assert instance["InstanceType"] == "t4g.micro"
        assert instance.get("InstanceLifecycle") == "spot"
        assert instance["IamInstanceProfile"]["Arn"].endswith(f"seymour-{deployment}-runner-{region}")
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["seymour:region"] == region
        assert tags["seymour:role"] == "runner"
        assert tags["seymour:managed"] == "true"
        (group,) = ec2.describe_security_groups(GroupIds=[instance["SecurityGroups"][0]["GroupId"]])[
            "SecurityGroups"
        ]
        assert group["IpPermissions"] == []
        egress = sorted(
            (p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group["IpPermissionsEgress"]
        )
        assert egress == [("tcp", 443, 443), ("tcp", 5671, 5671)]

    home_url = boto3.client("ssm", region_name=HOME).get_parameter(
        Name=f"/seymour/{deployment}/broker/home-url"
    )
    (address,) = boto3.client("ec2", region_name=HOME).describe_addresses(
        Filters=[{"Name": "tag:seymour:deployment", "Values": [deployment]}]
    )["Addresses"]
    assert home_url["Parameter"]["Value"] == f"amqps://{address['PublicIp']}:5671/"
    assert address.get("InstanceId")

    for region in REGIONS:
        _check_user_data(deployment, region, RELEASE)
        _check_runner_role(deployment, region)
    _check_home_certificate(deployment)

    again = cli(*args, "up", "--regions", ",".join(REGIONS), "--release", RELEASE)
    assert again.code == 0, again.out + again.err
    assert set(_summary(again.out).values()) == {"ok"}
    assert not re.search(r": (create|update|replace|delete)\b", again.out)
    assert tagged(deployment, (HOME, *REGIONS)) == made

    status = cli(*args, "status")
    assert status.code == 0
    assert _summary(status.out) == {f"{HOME}/home": "ok", **{f"{r}/runner": "ok" for r in REGIONS}}
    for region in REGIONS:
        assert re.search(
            rf"^{region}\s+• ec2-instance seymour-{deployment}-{region} i-\w+: found  \(running, t4g.micro, spot",  # noqa: E501
            status.out,
            flags=re.M,
        )

    down = cli(*args, "down")
    assert down.code == 0, down.out + down.err
    assert tagged(deployment, (HOME, *REGIONS)) == {}


def test_fargate_spot_runner_with_rds_home(cli: Any) -> None:
    deployment = "fg"
    region = "eu-north-1"
    args = ("--deployment", deployment, "--home-region", HOME)
    options = ("--compute", "fargate", "--home-db", "rds", "--broker-cidr", "203.0.113.0/24")
    up = cli(*args, "up", "--regions", region, *options)
    assert up.code == 0, up.out + up.err
    ec2 = boto3.client("ec2", region_name=HOME)
    (home_group,) = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"seymour-{deployment}-home"]}]
    )["SecurityGroups"]
    assert [
        (p["FromPort"], [r["CidrIp"] for r in p.get("IpRanges", [])]) for p in home_group["IpPermissions"]
    ] == [(5671, ["203.0.113.0/24"])]
    ecs = boto3.client("ecs", region_name=region)
    name = f"seymour-{deployment}-{region}"
    (cluster,) = ecs.describe_clusters(clusters=[name])["clusters"]
    assert "FARGATE_SPOT" in cluster["capacityProviders"]
    (service,) = ecs.describe_services(cluster=name, services=[name])["services"]
    # moto leaves the service's strategy out of describe_services; the cluster's default is the same one.
    assert cluster["defaultCapacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
    strategy = service.get("capacityProviderStrategy", cluster["defaultCapacityProviderStrategy"])
    assert [s["capacityProvider"] for s in strategy] == ["FARGATE_SPOT"]
    vpc_config = service["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc_config["assignPublicIp"] == "ENABLED"
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["networkMode"] == "awsvpc"
    assert task["executionRoleArn"].endswith(
        f"role/seymour/{deployment}/seymour-{deployment}-runner-{region}"
    )
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert set(containers) == {"broker", "runner"}
    assert all(c["memory"] > 0 for c in containers.values())
    runner_secrets = {s["name"]: s["valueFrom"] for s in containers["runner"]["secrets"]}
    assert runner_secrets["SEYMOUR_HOME_URL"].endswith(f"parameter/seymour/{deployment}/broker/home-url")
    assert "seymour serve runner --region eu-north-1" in containers["runner"]["command"][-1]
    rendered = json.dumps(task)
    for secret in _secrets(deployment):
        assert secret not in rendered
    iam = boto3.client("iam")
    attached = iam.list_attached_role_policies(RoleName=f"seymour-{deployment}-runner-{region}")
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["AmazonECSTaskExecutionRolePolicy"]
    (db,) = boto3.client("rds", region_name=HOME).describe_db_instances(
        DBInstanceIdentifier=f"seymour-{deployment}-home"
    )["DBInstances"]
    assert db["Engine"] == "postgres"
    assert db["PubliclyAccessible"] is False
    assert not tagged(deployment, (region,)).get("instance")

    broker_secrets = {s["name"]: s["valueFrom"] for s in containers["broker"]["secrets"]}
    assert broker_secrets["SEYMOUR_HOME_CA"].endswith(f"parameter/seymour/{deployment}/broker/home-ca")
    assert "> /etc/rabbitmq/home-ca.pem" in containers["broker"]["command"][-1]
    assert (
        f"--home-ca /etc/rabbitmq/home-ca.pem --home-name seymour-home.{deployment}"
        in (containers["runner"]["command"][-1])
    )
    again = cli(*args, "up", "--regions", region, *options)
    assert again.code == 0
    assert set(_summary(again.out).values()) == {"ok"}

    down = cli(*args, "down")
    assert down.code == 0, down.out + down.err
    assert tagged(deployment, (HOME, region)) == {}


def test_a_failing_region_is_reported_and_a_rerun_finishes_it(cli: Any) -> None:
    deployment = "partial"
    args = ("--deployment", deployment, "--home-region", HOME)
    regions = ",".join(REGIONS)
    first = cli(*args, "up", "--regions", regions, "--ami", "eu-north-1=ami-0000000000bad0000")
    assert first.code == 1
    summary = _summary(first.out)
    assert summary["eu-north-1/runner"] == "failed"
    assert "ami-0000000000bad0000" in first.out.split("\n\n")[-1]
    assert summary["us-east-1/runner"] == summary["ap-south-1/runner"] == summary[f"{HOME}/home"] == "changed"
    assert "eu-north-1" in first.err
    made = tagged(deployment, (HOME, *REGIONS))
    assert not [i for i in made["instance"] if i.startswith("eu-north-1/")]
    assert [g for g in made["security-group"] if g.startswith("eu-north-1/")]

    second = cli(*args, "up", "--regions", regions)
    assert second.code == 0, second.out + second.err
    summary = _summary(second.out)
    assert summary == {
        f"{HOME}/home": "ok",
        "us-east-1/runner": "ok",
        "ap-south-1/runner": "ok",
        "eu-north-1/runner": "changed",
    }
    assert re.findall(r"^(\S+)\s+\+ (\S+)", second.out, flags=re.M) == [("eu-north-1", "ec2-instance")]

    assert cli(*args, "down").code == 0
    assert tagged(deployment, (HOME, *REGIONS)) == {}


def test_a_new_release_replaces_the_runner(cli: Any) -> None:
    deployment = "chg"
    args = ("--deployment", deployment, "--home-region", HOME)
    assert cli(*args, "up", "--regions", "us-east-1", "--release", "1.0.0").code == 0
    plan = cli(*args, "plan", "--regions", "us-east-1", "--release", "1.0.1")
    assert re.search(r"^us-east-1\s+± ec2-instance .*would replace", plan.out, flags=re.M), plan.out
    assert re.search(rf"^{HOME} \(home\)\s+± ec2-instance .*would replace", plan.out, flags=re.M), plan.out
    rerun = cli(*args, "up", "--regions", "us-east-1", "--release", "1.0.1")
    assert rerun.code == 0
    assert len(tagged(deployment, ("us-east-1",))["instance"]) == 1
    assert "RELEASE='1.0.1'" in _user_data("us-east-1", deployment, "runner")
    assert cli(*args, "down").code == 0
