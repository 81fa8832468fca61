"""Regions: the AWS list is botocore's own, regenerated here to catch drift, with short display names."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from contracts.v1.aws_regions import AWS_REGIONS
from contracts.v1.regions import REGIONS, display_name

GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "aws_regions.py"


def _generator() -> ModuleType:
    """``scripts/aws_regions.py`` as a module (scripts/ is not a package; contracts must not import it)."""
    spec = importlib.util.spec_from_file_location("aws_regions_generator", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aws_regions_module_matches_botocore() -> None:
    """Regenerated in memory from the installed botocore: a new or renamed region fails here until the
    module is rewritten on purpose."""
    generator = _generator()
    committed = generator.TARGET.read_text(encoding="utf-8")
    fresh = generator.render()
    diff = "".join(
        difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "committed", "botocore")
    )
    assert committed == fresh, (
        f"contracts/v1/aws_regions.py differs from botocore's endpoint data:\n{diff}\n"
        "Regenerate on purpose: .venv/bin/python scripts/aws_regions.py --write "
        "(then renew the contract snapshots: python -m contracts.snapshots --write)"
    )


def test_every_commercial_region_and_the_local_one_can_be_chosen() -> None:
    import botocore.session

    endpoints = botocore.session.get_session().get_data("endpoints")
    (aws,) = (p for p in endpoints["partitions"] if p["partition"] == "aws")
    assert set(aws["regions"]) <= set(REGIONS)
    assert set(REGIONS) == {"local", *AWS_REGIONS}
    assert next(iter(REGIONS)) == "local"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("local", "This machine"),
        ("us-east-1", "N. Virginia"),
        ("eu-north-1", "Stockholm"),
        ("sa-east-1", "Sao Paulo"),
        ("ca-central-1", "Canada (Central)"),
        ("mx-central-1", "Mexico (Central)"),
        ("us-gov-west-1", "GovCloud (US-West)"),
        ("xx-nowhere-9", "xx-nowhere-9"),
    ],
    ids=["local", "place", "europe", "ascii", "shared-place-1", "shared-place-2", "partition", "unknown"],
)
def test_display_names(code: str, name: str) -> None:
    assert display_name(code) == name
