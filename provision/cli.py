"""seymour-provision: plan, up, status and down for a Seymour deployment on AWS (boto3, no Terraform)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from provision.apply import (
    Work,
    discover_regions,
    inspect,
    provision_home,
    provision_runner,
    run_all,
    teardown,
)
from provision.aws import Aws
from provision.plan import Config, ConfigError, Role
from provision.report import CHANGES, Reporter


def _release() -> str:
    try:
        return metadata.version("seymour")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _regions(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _amis(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        region, sep, image = value.partition("=")
        out[region if sep else "*"] = image if sep else region
    return out


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options accepted before or after the command (``seymour-provision up --home-region R`` and
    ``seymour-provision --home-region R up`` both work); after it they override only when given."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--profile", default=default(None), help="AWS profile (default: the usual AWS configuration chain)"
    )
    parser.add_argument(
        "--deployment",
        default=default(os.environ.get("SEYMOUR_DEPLOYMENT", "seymour")),
        help="name tagged on everything (default: seymour)",
    )
    parser.add_argument(
        "--home-region",
        default=default(os.environ.get("SEYMOUR_HOME_REGION")),
        help="region of the home (also keeps the SSM parameters)",
    )
    parser.add_argument("--jobs", type=int, default=default(8), help="regions worked on at once (default: 8)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log AWS calls that are retried"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seymour-provision",
        description="Provision Seymour on AWS: a home (broker, database, services) and a runner per region.",
    )
    _common(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (
        ("plan", "print every resource that up would create or change; change nothing"),
        ("up", "create or fix the home and each region's runner (safe to re-run)"),
    ):
        sub = commands.add_parser(name, help=help_text)
        _common(sub, defaults=False)
        sub.add_argument(
            "--regions", type=_regions, required=True, help="comma-separated region codes for runners"
        )
        sub.add_argument(
            "--compute", choices=("ec2", "fargate"), default="ec2", help="runner compute (default: ec2)"
        )
        sub.add_argument(
            "--no-spot", dest="spot", action="store_false", help="on-demand EC2 runners instead of spot"
        )
        sub.add_argument(
            "--instance-type", default="t4g.micro", help="runner instance type (arm64; default t4g.micro)"
        )
        sub.add_argument(
            "--home-instance-type", default="t4g.small", help="home instance type (arm64; default t4g.small)"
        )
        sub.add_argument(
            "--home-db",
            choices=("instance", "rds"),
            default="instance",
            help="PostgreSQL on the home instance or RDS",
        )
        sub.add_argument(
            "--release", default=_release(), help="seymour version the machines install (default: this one)"
        )
        sub.add_argument(
            "--ami",
            action="append",
            default=[],
            metavar="[REGION=]AMI",
            help="AMI override, for all regions or one",
        )
        sub.add_argument(
            "--ui-cidr",
            action="append",
            default=[],
            help="network allowed to reach the UI on port 8000 (repeatable)",
        )
        sub.add_argument(
            "--broker-cidr",
            action="append",
            default=[],
            help="network the regions connect to home's broker from, e.g. their NAT gateways' addresses "
            "(repeatable; default anywhere: spot runners have no fixed address)",
        )
    for name, help_text in (
        ("status", "show what exists in each region, found by tags"),
        ("down", "delete exactly what up created, found by tags"),
    ):
        sub = commands.add_parser(name, help=help_text)
        _common(sub, defaults=False)
        sub.add_argument(
            "--regions", type=_regions, default=None, help="limit to these regions (default: all found)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    if not args.home_region:
        print("seymour-provision: --home-region (or SEYMOUR_HOME_REGION) is required", file=sys.stderr)
        return 2
    try:
        if args.command in ("plan", "up"):
            cfg = Config(
                deployment=args.deployment,
                home_region=args.home_region,
                regions=args.regions,
                release=args.release,
                compute=args.compute,
                spot=args.spot,
                instance_type=args.instance_type,
                home_instance_type=args.home_instance_type,
                home_db=args.home_db,
                amis=_amis(args.ami),
                ui_cidrs=tuple(args.ui_cidr),
                broker_cidrs=tuple(args.broker_cidr),
            )
        else:
            cfg = Config(
                deployment=args.deployment,
                home_region=args.home_region,
                regions=args.regions or (),
                release=_release(),
            )
    except ConfigError as error:
        print(f"seymour-provision: {error}", file=sys.stderr)
        return 2

    aws = Aws(args.profile)
    reporter = Reporter()
    dry_run = args.command in ("plan", "status")
    jobs: list[tuple[str, Role, Work]]
    if args.command in ("plan", "up"):
        jobs = [
            (cfg.home_region, "home", provision_home),
            *((region, "runner", provision_runner) for region in cfg.regions),
        ]
    else:
        regions = list(cfg.regions) or discover_regions(aws, cfg)
        work = inspect if args.command == "status" else teardown
        jobs = [(region, "home" if region == cfg.home_region else "runner", work) for region in regions]

    results = run_all(aws, cfg, jobs, dry_run=dry_run, reporter=reporter, max_workers=args.jobs)
    title = f"{args.command} — deployment {cfg.deployment}, home {cfg.home_region}"
    reporter.summary(title, results, planning=args.command == "plan")
    if args.command == "plan":
        changes = sum(1 for r in results for s in r.steps if s.verb in CHANGES)
        print(f"plan: {changes} change(s); nothing was changed")
    failed = [r.region for r in results if r.status == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)} — fix the cause and run the same command again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
