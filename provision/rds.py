"""RDS: the home's PostgreSQL when ``--home-db rds`` (private, encrypted, reachable from the home only)."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.exceptions import ClientError

from provision.context import Ctx
from provision.plan import tag_list

ENGINE = "postgres"
INSTANCE_CLASS = "db.t4g.micro"
STORAGE_GB = 20


def _find(ctx: Ctx, identifier: str) -> dict[str, str] | None:
    try:
        found = ctx.aws.rds(ctx.region).describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            return None
        raise
    return {"status": str(found[0].get("DBInstanceStatus", "?"))} if found else None


def status(ctx: Ctx, identifier: str) -> str | None:
    """The database's status, or None when there is none."""
    found = _find(ctx, identifier)
    return None if found is None else found["status"]


def ensure_db(
    ctx: Ctx, identifier: str, *, password_param: str, security_group: str, tags: Mapping[str, str]
) -> None:
    """The database exists. Its master password is the SSM SecureString ``password_param``."""
    current = _find(ctx, identifier)
    if current is not None:
        ctx.record("ok", "rds-instance", identifier, current["status"])
        return
    ctx.record("create", "rds-instance", identifier, f"{ENGINE} {INSTANCE_CLASS} {STORAGE_GB} GB, private")
    if ctx.dry_run:
        return
    password = ctx.aws.ssm(ctx.cfg.home_region).get_parameter(Name=password_param, WithDecryption=True)
    ctx.aws.rds(ctx.region).create_db_instance(
        DBInstanceIdentifier=identifier,
        DBName="seymour",
        Engine=ENGINE,
        DBInstanceClass=INSTANCE_CLASS,
        AllocatedStorage=STORAGE_GB,
        MasterUsername="seymour",
        MasterUserPassword=password["Parameter"]["Value"],
        VpcSecurityGroupIds=[security_group],
        PubliclyAccessible=False,
        StorageEncrypted=True,
        BackupRetentionPeriod=7,
        Tags=tag_list(tags),
    )


def delete(ctx: Ctx, identifier: str) -> None:
    """Delete the database without a final snapshot (``down`` removes everything it made) and wait."""
    if _find(ctx, identifier) is None:
        return
    ctx.record("delete", "rds-instance", identifier, "no final snapshot")
    if ctx.applying:
        rds = ctx.aws.rds(ctx.region)
        rds.delete_db_instance(
            DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        )
        rds.get_waiter("db_instance_deleted").wait(
            DBInstanceIdentifier=identifier, WaiterConfig={"Delay": 15, "MaxAttempts": 80}
        )
