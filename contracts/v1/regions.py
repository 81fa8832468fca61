"""The regions a check can be sent from: AWS region codes with the names people know them by."""

from __future__ import annotations

from typing import Final

#: Region code → display name. The 22 regions of the original Seymour plus ``local``, the embedded
#: runner on the machine that runs ``seymour up``.
REGIONS: Final[dict[str, str]] = {
    "local": "This machine",
    "us-east-1": "N. Virginia",
    "us-east-2": "Ohio",
    "us-west-1": "N. California",
    "us-west-2": "Oregon",
    "af-south-1": "Cape Town",
    "ap-east-1": "Hong Kong",
    "ap-south-1": "Mumbai",
    "ap-northeast-1": "Tokyo",
    "ap-northeast-2": "Seoul",
    "ap-northeast-3": "Osaka",
    "ap-southeast-1": "Singapore",
    "ap-southeast-2": "Sydney",
    "ca-central-1": "Montreal",
    "eu-central-1": "Frankfurt",
    "eu-west-1": "Ireland",
    "eu-west-2": "London",
    "eu-west-3": "Paris",
    "eu-south-1": "Milan",
    "eu-north-1": "Stockholm",
    "me-south-1": "Bahrain",
    "sa-east-1": "São Paulo",
    "us-gov-west-1": "GovCloud (US-West)",
}

DEFAULT_LOCAL_REGION: Final = "local"


def display_name(region: str) -> str:
    """The human name of a region, or the code itself for one we do not know."""
    return REGIONS.get(region, region)
