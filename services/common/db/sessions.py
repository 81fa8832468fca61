"""The one session-factory type every service is handed: ``async with sessions() as session``."""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Sessions: TypeAlias = async_sessionmaker[AsyncSession]
