"""Files that hold secrets are private from the moment they exist: directories 0700, files 0600,
created with those modes (never written first and chmod'ed after, which leaves a window)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by its owner only; tighten it if it exists and is
    ours."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (created so, or tightened if it is ours) without touching
    its content; its directory is created private when missing."""
    if not path.parent.exists():
        private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(descriptor)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(FILE_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, a file that exists only with mode 0600 (replaced whole)."""
    if not path.parent.exists():
        private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
