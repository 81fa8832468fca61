"""SSM Parameter Store: generated secrets (SecureString, never rotated by a re-run) and plain values."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Literal

from provision.context import Ctx
from provision.plan import TAG_DEPLOYMENT, TAG_REGION, tag_list
from provision.report import Verb


def _exists(ctx: Ctx, name: str) -> dict[str, str] | None:
    ssm = ctx.aws.ssm(ctx.cfg.home_region)
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    params = found.get("Parameters", [])
    return {"Type": str(params[0].get("Type", ""))} if params else None


def ensure_secret(ctx: Ctx, name: str, tags: Mapping[str, str]) -> None:
    """A SecureString holding a password made with ``secrets``; left alone when it is already there."""
    current = _exists(ctx, name)
    if current is not None and current["Type"] == "SecureString":
        ctx.record("ok", "ssm-parameter", name)
        return
    verb: Verb = "create" if current is None else "replace"
    ctx.record(verb, "ssm-parameter", name, "SecureString, generated")
    if ctx.applying:
        ssm = ctx.aws.ssm(ctx.cfg.home_region)
        value = secrets.token_urlsafe(32)
        if current is None:
            ssm.put_parameter(Name=name, Value=value, Type="SecureString", Tags=tag_list(tags))
        else:
            ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def ensure_value(ctx: Ctx, name: str, value: str, tags: Mapping[str, str]) -> None:
    """A plain String parameter holding ``value``; rewritten when it differs."""
    ssm = ctx.aws.ssm(ctx.cfg.home_region)
    if _exists(ctx, name) is None:
        ctx.record("create", "ssm-parameter", name, value)
        if ctx.applying:
            ssm.put_parameter(Name=name, Value=value, Type="String", Tags=tag_list(tags))
        return
    current = ssm.get_parameter(Name=name)["Parameter"].get("Value")
    if current == value:
        ctx.record("ok", "ssm-parameter", name)
        return
    ctx.record("update", "ssm-parameter", name, f"{current} → {value}")
    if ctx.applying:
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def ensure_home_tls(ctx: Ctx, tags: Mapping[str, str]) -> None:
    """The deployment CA's certificate and home's certificate and key, made once.

    The CA's key is used to issue home's certificate here and then dropped: nothing can issue another
    certificate regions would trust. To rotate, delete the three parameters and provision again.
    """
    cfg = ctx.cfg
    cert_param, key_param = cfg.home_tls_params()
    names = (cfg.home_ca_param(), cert_param, key_param)
    if all(_exists(ctx, name) is not None for name in names):
        for name in names:
            ctx.record("ok", "ssm-parameter", name)
        return
    for name in names:
        ctx.record(
            "create", "ssm-parameter", name, f"deployment CA, home certificate for {cfg.home_server_name}"
        )
    if not ctx.applying:
        return
    from provision.tls import issue_server, make_ca

    ca = make_ca(f"Seymour {cfg.deployment} CA")
    server = issue_server(ca, cfg.home_server_name)
    values: tuple[tuple[str, str, Literal["String", "SecureString"]], ...] = (
        (cfg.home_ca_param(), ca.cert, "String"),
        (cert_param, server.cert, "String"),
        (key_param, server.key, "SecureString"),
    )
    ssm = ctx.aws.ssm(cfg.home_region)
    for name, value, kind in values:
        if _exists(ctx, name) is None:
            ssm.put_parameter(Name=name, Value=value, Type=kind, Tags=tag_list(tags))
        else:
            ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)


def tagged(ctx: Ctx, region: str) -> list[str]:
    """Names of this deployment's parameters (in the home region) that belong to ``region``."""
    ssm = ctx.aws.ssm(ctx.cfg.home_region)
    names: list[str] = []
    for page in ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[
            {"Key": f"tag:{TAG_DEPLOYMENT}", "Values": [ctx.cfg.deployment]},
            {"Key": f"tag:{TAG_REGION}", "Values": [region]},
        ]
    ):
        names.extend(str(param["Name"]) for param in page.get("Parameters", []))
    return sorted(names)


def regions_in_use(ctx: Ctx) -> set[str]:
    """Regions named by this deployment's parameters (the home region keeps all of them)."""
    ssm = ctx.aws.ssm(ctx.cfg.home_region)
    regions: set[str] = set()
    for page in ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": f"tag:{TAG_DEPLOYMENT}", "Values": [ctx.cfg.deployment]}]
    ):
        for param in page.get("Parameters", []):
            tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=str(param["Name"]))
            regions.update(t["Value"] for t in tags.get("TagList", []) if t["Key"] == TAG_REGION)
    return regions


def delete(ctx: Ctx, region: str) -> None:
    """Delete this deployment's parameters that belong to ``region``."""
    names = tagged(ctx, region)
    for name in names:
        ctx.record("delete", "ssm-parameter", name)
    if ctx.applying:
        ssm = ctx.aws.ssm(ctx.cfg.home_region)
        for start in range(0, len(names), 10):
            ssm.delete_parameters(Names=names[start : start + 10])
