"""The ``seymour`` command: each sub-command lives in its own module, registered in ``COMMANDS``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

#: Modules that add sub-commands (each has ``register(subparsers)``); missing ones are skipped so a
#: slim runner image without the api's extras still has a working CLI.
COMMANDS: Final = (
    "services.cli.runtime",
    "services.cli.checks",
    "services.cli.users",
    "services.cli.region",
    "services.cli.dlq",
    "services.cli.secrets",
)


def parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    top = argparse.ArgumentParser(prog="seymour", description="Active API monitoring from many regions.")
    subparsers = top.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seymour``; returns the process exit code."""
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


def serve_main(service: str) -> None:
    """``python -m services.<name>``: the same as ``seymour serve <name>``."""
    sys.exit(main(["serve", service, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
