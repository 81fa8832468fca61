"""Options go before or after the command, as people type them."""

from __future__ import annotations

import pytest

from provision.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--home-region", "eu-west-1", "--regions", "us-east-1,eu-north-1", "--deployment", "demo"],
        ["--home-region", "eu-west-1", "--deployment", "demo", "up", "--regions", "us-east-1,eu-north-1"],
        [
            "--home-region",
            "us-west-2",
            "--deployment",
            "demo",
            "up",
            "--home-region",
            "eu-west-1",
            "--regions",
            "us-east-1, eu-north-1",
        ],
    ],
    ids=["after", "before", "after-overrides-before"],
)
def test_common_options_in_either_place(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.command, args.home_region, args.deployment) == ("up", "eu-west-1", "demo")
    assert args.regions == ("us-east-1", "eu-north-1")
    assert args.jobs == 8


def test_defaults_hold_when_nothing_is_given() -> None:
    args = build_parser().parse_args(["status"])
    assert (args.deployment, args.jobs, args.verbose, args.regions) == ("seymour", 8, False, None)
