"""Files holding secrets are private from creation: the data dir 0700, the SQLite database (and its WAL
files) and the CLI token 0600, whatever the umask — other local users read none of them."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.cli.firstrun import first_run
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.files import private_dir, write_private
from services.common.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: whatever is private is so by its own doing."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def test_the_database_and_its_directory_are_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "seymour-data"
    url = f"sqlite+aiosqlite:///{data / 'seymour.db'}"
    upgrade_sync(url)

    async def write() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(text("SELECT 1"))
        await engine.dispose()

    asyncio.run(write())
    assert mode(data) == 0o700
    for name in ("seymour.db", "seymour.db-wal", "seymour.db-shm"):
        if (data / name).exists():
            assert mode(data / name) == 0o600, name


def test_an_existing_data_dir_is_tightened(tmp_path: Path, open_umask: None) -> None:
    loose = tmp_path / "data"
    loose.mkdir(mode=0o755)
    private_dir(loose)
    assert mode(loose) == 0o700


def test_the_cli_token_file_is_never_readable_by_others(tmp_path: Path, open_umask: None) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_password="first-admin-pass-1")
    private_dir(settings.data_dir)
    url = settings.resolved_database_url()
    upgrade_sync(url)

    async def start() -> list[str]:
        engine = make_engine(url)
        try:
            return await first_run(settings, make_sessionmaker(engine))
        finally:
            await engine.dispose()

    notes = asyncio.run(start())
    token_file = settings.data_dir / "api-token"
    assert any("api-token" in note for note in notes)
    assert mode(token_file) == 0o600
    assert token_file.read_text().startswith("sey_")


def test_a_private_write_replaces_the_file_whole(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "secret.txt"
    write_private(path, "one")
    write_private(path, "two")
    assert path.read_text() == "two"
    assert mode(path) == 0o600
    assert [item.name for item in tmp_path.iterdir()] == ["secret.txt"]
