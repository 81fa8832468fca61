"""JSON Schema snapshots of every v1 contract, committed under ``contracts/schemas/v1``.

A test compares them with the models, so a change to the wire fails until the snapshot is renewed on
purpose (``python -m contracts.snapshots --write``) — and a reviewer sees the schema diff.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from contracts.v1 import MESSAGE_TYPES, AssertionFailure, CheckSpec, ErrorFailure, MissedFailure

SCHEMA_DIR: Final = Path(__file__).parent / "schemas" / "v1"
#: The failure models are not bus messages, but alerting stores them in incidents: their form is a contract.
MODELS: Final[tuple[type[BaseModel], ...]] = (
    CheckSpec,
    *MESSAGE_TYPES,
    AssertionFailure,
    ErrorFailure,
    MissedFailure,
)


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of ``model`` as it travels (aliases on)."""
    return model.model_json_schema(by_alias=True, mode="serialization")


def render(model: type[BaseModel]) -> str:
    """The snapshot text of ``model``: stable key order, trailing newline."""
    return json.dumps(schema_of(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot_path(model: type[BaseModel]) -> Path:
    """Where ``model``'s snapshot lives."""
    return SCHEMA_DIR / f"{model.__name__}.json"


def main() -> None:
    """Check the snapshots (default) or rewrite them (``--write``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the snapshots from the models")
    args = parser.parse_args()
    stale = []
    for model in MODELS:
        path = snapshot_path(model)
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(model), encoding="utf-8")
        elif not path.exists() or path.read_text(encoding="utf-8") != render(model):
            stale.append(path.name)
    if stale:
        raise SystemExit(
            f"stale schema snapshots: {', '.join(stale)} (run python -m contracts.snapshots --write)"
        )


if __name__ == "__main__":
    main()
