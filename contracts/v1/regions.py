"""The regions a check can be sent from: AWS region codes (from botocore's endpoint data, generated into
:mod:`contracts.v1.aws_regions`) plus ``local``, with the short names people know them by."""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from contracts.v1.aws_regions import AWS_REGIONS

#: Regions that are not AWS's: ``local`` is the embedded runner on the machine that runs ``seymour up``.
LOCAL_REGIONS: Final[dict[str, str]] = {"local": "This machine"}

_PLACE: Final = re.compile(r"\(([^)]+)\)\s*$")


def _short_names(descriptions: dict[str, str]) -> dict[str, str]:
    """Code → the place in a description's parentheses ("Europe (Stockholm)" → "Stockholm"), which is
    how the pages and alerts name a region in a short list. The whole description where two regions
    share that place ("Canada (Central)", "Mexico (Central)"), where there is none, and for a separate
    partition, which botocore brands "AWS …" ("AWS GovCloud (US-West)" → "GovCloud (US-West)")."""
    places = {
        code: match.group(1) if (match := _PLACE.search(text)) else None
        for code, text in descriptions.items()
    }
    shared = {place for place, count in Counter(places.values()).items() if count > 1}
    return {
        code: place
        if place is not None and place not in shared and not descriptions[code].startswith("AWS ")
        else descriptions[code].removeprefix("AWS ")
        for code, place in places.items()
    }


#: Region code → display name: ``local`` first, then the AWS regions in code order.
REGIONS: Final[dict[str, str]] = {**LOCAL_REGIONS, **_short_names(AWS_REGIONS)}

DEFAULT_LOCAL_REGION: Final = "local"


def display_name(region: str) -> str:
    """The human name of a region, or the code itself for one we do not know."""
    return REGIONS.get(region, region)
