"""The configuration shown in the README and in examples/ is valid, so copying it works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.v1 import CheckSpec

ROOT = Path(__file__).resolve().parents[1]
README_BLOCKS = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
MINIMAL: dict[str, Any] = {"name": "x", "request": {"url": "https://example.com/"}, "regions": ["local"]}


@pytest.mark.parametrize("block", README_BLOCKS, ids=[f"readme-{i}" for i in range(len(README_BLOCKS))])
def test_readme_yaml_is_a_valid_check(block: str) -> None:
    document = yaml.safe_load(block)
    base = {key: value for key, value in MINIMAL.items() if key != "request" or "steps" not in document}
    CheckSpec.model_validate({**base, **document})


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid_checks(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        CheckSpec.model_validate(document)
