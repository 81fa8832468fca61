"""First start of an embedded Seymour: an API token for the CLI, so ``seymour apply`` just works."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from services.common.db.models import ApiToken
from services.common.db.sessions import Sessions
from services.common.files import write_private
from services.common.settings import Settings

TOKEN_FILE = "api-token"


def token_path(settings: Settings) -> Path:
    """Where the local CLI token is kept (readable by its owner only)."""
    return settings.data_dir / TOKEN_FILE


async def first_run(settings: Settings, sessions: Sessions) -> list[str]:
    """Create the local CLI token (once) and let the UI create its first admin; returns lines to print."""
    from services.api.auth import create_token, hash_token

    notes: list[str] = []
    path = token_path(settings)
    existing = path.read_text().strip() if path.exists() else None
    valid = False
    if existing:
        async with sessions() as session:
            valid = (
                await session.execute(select(ApiToken.id).where(ApiToken.token_hash == hash_token(existing)))
            ).scalar_one_or_none() is not None
    if not valid and not settings.api_token:
        _, token = await create_token(sessions, "local CLI")
        write_private(path, token + "\n")
        notes.append(f"An API token for the CLI was written to {path}")
    try:
        from services.api.ui.bootstrap import ensure_admin
    except ImportError:
        return notes
    notes.extend(await ensure_admin(settings, sessions))
    return notes
