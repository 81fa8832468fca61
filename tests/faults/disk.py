"""A small filesystem of the fault suite's own under its database, which it can fill to the last byte.

A disk that fills up is a fault PostgreSQL reports with its own words and SQLSTATE (``could not extend
file ...: No space left on device``, 53100): only a real full filesystem says that. The suite's database
moves onto a tablespace on a small ``tmpfs`` mounted for it (its WAL stays in the server's data directory,
on the machine's disk, so the server itself never runs out of space); :meth:`SmallDisk.fill` writes a
filler file until the filesystem refuses another byte, :meth:`SmallDisk.free` deletes it.

Mounting needs root, and the server must see the mount (a PostgreSQL on this machine): otherwise
:func:`small_disk` yields the reason it could not, and the disk-full scenario is skipped with it. On the
way out (also after a failure) the filler is deleted, the database moved back to ``pg_default``, the
tablespace dropped and the filesystem unmounted, so the shared server is never left with a full disk or a
tablespace whose directory is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from conftest import PG_ADMIN_URL

#: Room for the suite's database and everything it stores in a whole run (~60 MB), many times over.
SIZE_MB = 256
_CHUNK = 1 << 20


@dataclass
class SmallDisk:
    """The mounted filesystem, the tablespace on it, and the filler file that fills it."""

    mount: Path
    tablespace: str

    @property
    def filler(self) -> Path:
        return self.mount / "filler"

    def fill(self) -> int:
        """Write the filler until the filesystem refuses another byte (megabytes, then pages); the bytes
        written."""
        written = 0
        with self.filler.open("ab", buffering=0) as out:
            for size in (_CHUNK, 4096, 512):
                block = b"\0" * size
                while True:
                    try:
                        written += out.write(block) or 0
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free(self) -> None:
        """Space comes back: the filler is deleted."""
        self.filler.unlink(missing_ok=True)

    def available(self) -> int:
        """Bytes the filesystem would still take."""
        stats = os.statvfs(self.mount)
        return stats.f_bavail * stats.f_frsize


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _terminate(database: str) -> None:
    _psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )


def unavailable(pg_url: str) -> str | None:
    """Why the suite cannot give ``pg_url``'s database a small disk here, or ``None`` if it can."""
    if os.geteuid() != 0:
        return "not root: mounting the small filesystem for the database needs root"
    host = make_url(pg_url).host or ""
    if host not in ("127.0.0.1", "localhost", "::1") or make_url(PG_ADMIN_URL).host != host:
        return f"PostgreSQL at {host!r} may not see a filesystem mounted on this machine"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user on this machine to own the tablespace"
    return None


@contextlib.contextmanager
def small_disk(pg_url: str) -> Iterator[SmallDisk | str]:
    """Move ``pg_url``'s database (no connection may be open on it) onto a tablespace on a small tmpfs;
    yields the :class:`SmallDisk`, or the reason it cannot be done here. Undone on the way out."""
    reason = unavailable(pg_url)
    if reason is not None:
        yield reason
        return
    database = make_url(pg_url).database
    owner = pwd.getpwnam("postgres")
    tag = uuid.uuid4().hex[:8]
    mount = Path(tempfile.mkdtemp(prefix="seymour-faults-disk-"))
    disk = SmallDisk(mount, f"seymour_faults_{tag}")
    mounted = created = moved = False
    try:
        options = f"size={SIZE_MB}m,mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True, timeout=30)
        mounted = True
        location = mount / "pg"
        location.mkdir()
        os.chown(location, owner.pw_uid, owner.pw_gid)
        _psql(f"CREATE TABLESPACE {disk.tablespace} LOCATION '{location}'")
        created = True
        _terminate(str(database))
        _psql(f'ALTER DATABASE "{database}" SET TABLESPACE {disk.tablespace}')
        moved = True
        yield disk
    finally:
        disk.free()
        if moved:
            _terminate(str(database))
            try:
                _psql(f'ALTER DATABASE "{database}" SET TABLESPACE pg_default')
            except subprocess.CalledProcessError:  # the tablespace must go whatever: the database with it
                _psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if created:
            _psql(f"DROP TABLESPACE {disk.tablespace}")
        if mounted:
            subprocess.run(["umount", str(mount)], check=True, timeout=30)
        shutil.rmtree(mount, ignore_errors=True)
