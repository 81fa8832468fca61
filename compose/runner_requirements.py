"""Print the runner image's requirements: pyproject's dependencies less the ones it leaves out.

The runner image has no api and no database drivers, so it installs what ``[tool.seymour]
runner-image-excludes`` does not name, with the pins pyproject.toml has (one place for every pin).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def name_of(requirement: str) -> str:
    """The distribution name of a requirement string (``faststream[rabbit]>=0.7`` → ``faststream``)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return match.group(0).lower()


def runner_requirements(pyproject: Path) -> list[str]:
    """The requirement strings the runner image installs."""
    data = tomllib.loads(pyproject.read_text())
    excluded = {name.lower() for name in data["tool"]["seymour"]["runner-image-excludes"]}
    return [req for req in data["project"]["dependencies"] if name_of(req) not in excluded]


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pyproject.toml")
    print("\n".join(runner_requirements(path)))
