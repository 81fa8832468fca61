"""People and their browser sessions: argon2 password hashes, session ids kept only as SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from contracts.v1.base import utcnow
from services.api.permissions import check_role
from services.common.db.models import ApiToken, User, WebSession
from services.common.db.sessions import Sessions
from services.common.errors import Conflict, Invalid, NotFound

T = TypeVar("T")

SESSION_LIFETIME: Final = timedelta(days=14)
MIN_PASSWORD: Final = 8
USERNAME: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")

_hasher = PasswordHasher()
#: Verified against when the username is unknown, so a login takes as long either way.
_DUMMY_HASH: Final = _hasher.hash(secrets.token_urlsafe(16))


#: argon2 costs ~0.1 s of CPU: it runs in these threads (argon2-cffi releases the GIL), never on the
#: event loop, and at most ``HASH_QUEUE`` hashes wait for them, so a login flood queues instead of
#: stalling the api (and everything else ``seymour up`` runs on that loop).
HASH_THREADS: Final = 2
HASH_QUEUE: Final = 16
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _hash_sync(password: str) -> str:
    digest: str = _hasher.hash(password)
    return digest


def _verify_sync(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    slots = _slots.setdefault(loop, asyncio.Semaphore(HASH_QUEUE))
    async with slots:
        return await loop.run_in_executor(_pool, fn, *args)


async def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (computed in the hashing pool)."""
    return await _off_loop(_hash_sync, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (checked in the hashing pool)."""
    return await _off_loop(_verify_sync, password_hash, password)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_username(username: str) -> str:
    """The username stripped; 422 naming the field if it is not acceptable."""
    username = username.strip()
    if not USERNAME.match(username):
        raise Invalid(
            "invalid username",
            [{"field": "username", "message": "1-100 letters, digits, '.', '_', '-' or '@'"}],
        )
    return username


def check_password(password: str) -> str:
    """``password`` if it is long enough; 422 otherwise."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            "password too short",
            [{"field": "password", "message": f"at least {MIN_PASSWORD} characters"}],
        )
    return password


def user_view(row: User) -> dict[str, Any]:
    """A user as the API shows it (never the hash)."""
    return {
        "id": str(row.id),
        "username": row.username,
        "role": row.role,
        "is_admin": row.is_admin,
        "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
    }


async def create_user(
    sessions: Sessions, username: str, password: str, *, is_admin: bool = False, role: str | None = None
) -> User:
    """Store a new user (an editor unless ``role`` or ``is_admin`` says otherwise); 422 on a bad name,
    password or role, 409 if the name is taken."""
    row = User(
        id=uuid.uuid4(),
        username=check_username(username),
        password_hash=await hash_password(check_password(password)),
        role=check_role(role or ("admin" if is_admin else "editor")),
        created_at=utcnow(),
    )
    try:
        async with sessions() as session, session.begin():
            session.add(row)
    except IntegrityError:
        raise Conflict(
            f"a user named '{row.username}' already exists", [{"field": "username", "message": "taken"}]
        ) from None
    return row


async def list_users(sessions: Sessions) -> list[User]:
    """Every user, by name."""
    async with sessions() as session:
        return list((await session.execute(select(User).order_by(User.username))).scalars().all())


async def count_users(sessions: Sessions) -> int:
    """How many users exist."""
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def find_user(
    sessions: Sessions, *, user_id: uuid.UUID | None = None, username: str | None = None
) -> User:
    """One user by id or name, or 404."""
    query = select(User)
    query = query.where(User.id == user_id) if user_id is not None else query.where(User.username == username)
    async with sessions() as session:
        row: User | None = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no user {user_id or username}")
    return row


async def delete_user(sessions: Sessions, user_id: uuid.UUID) -> None:
    """Remove a user with their sessions and tokens; refuses (409) to remove the last admin."""
    async with sessions() as session, session.begin():
        row = await session.get(User, user_id)
        if row is None:
            raise NotFound(f"no user {user_id}")
        if row.is_admin and await _admins(session) <= 1:
            raise Conflict("cannot remove the last admin")
        await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
        await session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
        await session.delete(row)


async def _admins(session: Any) -> int:
    return int(
        (
            await session.execute(select(func.count()).select_from(User).where(User.role == "admin"))
        ).scalar_one()
    )


async def set_role(sessions: Sessions, user_id: uuid.UUID, role: str) -> User:
    """Give a user another role; 422 for an unknown role, 409 when it would leave no admin."""
    role = check_role(role)
    async with sessions() as session, session.begin():
        row: User | None = await session.get(User, user_id)
        if row is None:
            raise NotFound(f"no user {user_id}")
        if row.is_admin and role != "admin" and await _admins(session) <= 1:
            raise Conflict("cannot demote the last admin", [{"field": "role", "message": "last admin"}])
        row.role = role
    return row


async def set_password(
    sessions: Sessions,
    user_id: uuid.UUID,
    password: str,
    *,
    current: str | None = None,
    keep_session: str | None = None,
    keep_tokens: bool = False,
) -> int:
    """Change a user's password, end their sessions (all but ``keep_session``, the cookie value of the
    browser that asked) and revoke their API tokens unless ``keep_tokens``: whoever knew the old
    password may have opened a session or made a token. With ``current`` (someone changing their own
    password) it must be the present password (422 otherwise). Returns how many tokens were revoked."""
    check_password(password)
    if current is not None:
        person = await find_user(sessions, user_id=user_id)
        if not await verify_password(person.password_hash, current):
            raise Invalid(
                "the current password is wrong", [{"field": "current_password", "message": "wrong password"}]
            )
    digest = await hash_password(password)
    async with sessions() as session, session.begin():
        row = await session.get(User, user_id)
        if row is None:
            raise NotFound(f"no user {user_id}")
        row.password_hash = digest
        ended = delete(WebSession).where(WebSession.user_id == user_id)
        if keep_session is not None:
            ended = ended.where(WebSession.id_hash != _sha256(keep_session))
        await session.execute(ended)
        if keep_tokens:
            return 0
        revoked = await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return int(getattr(revoked, "rowcount", 0) or 0)


async def authenticate(sessions: Sessions, username: str, password: str) -> User | None:
    """The user if ``password`` is theirs, else ``None`` (same work either way)."""
    async with sessions() as session:
        row = (
            await session.execute(select(User).where(User.username == username.strip()))
        ).scalar_one_or_none()
    if row is None:
        await verify_password(_DUMMY_HASH, password)
        return None
    return row if await verify_password(row.password_hash, password) else None


@dataclass(frozen=True)
class SessionUser:
    """Who a browser session belongs to, and the CSRF token its forms must carry."""

    user_id: uuid.UUID
    username: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        """Whether this user administers Seymour."""
        return self.role == "admin"


async def open_session(sessions: Sessions, user: User) -> str:
    """Start a session; returns the id for the cookie (only its hash is stored)."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.add(
            WebSession(
                id_hash=_sha256(session_id),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    return session_id


async def load_session(
    sessions: Sessions, session_id: str, *, now: datetime | None = None
) -> SessionUser | None:
    """The live session behind a cookie value, or ``None``."""
    now = now or utcnow()
    async with sessions() as session:
        row = (
            await session.execute(
                select(WebSession.csrf_token, WebSession.expires_at, User.id, User.username, User.role)
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.id_hash == _sha256(session_id))
            )
        ).one_or_none()
    if row is None or row.expires_at <= now:
        return None
    return SessionUser(row.id, row.username, row.role, row.csrf_token)


async def close_session(sessions: Sessions, session_id: str) -> None:
    """End a session (logout)."""
    async with sessions() as session, session.begin():
        await session.execute(delete(WebSession).where(WebSession.id_hash == _sha256(session_id)))


def token_view(row: ApiToken) -> dict[str, Any]:
    """An API token as shown after creation (only its prefix; the value is never shown again)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": str(row.id),
        "name": row.name,
        "prefix": row.prefix,
        "scope": row.scope,
        "user_id": str(row.user_id) if row.user_id else None,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }


#: ``owner=`` of :func:`list_tokens` and :func:`revoke_token` for an administrator: every token.
ANY_OWNER: Final = object()


async def list_tokens(sessions: Sessions, *, owner: Any) -> list[ApiToken]:
    """The tokens of ``owner`` (a user id; ``ANY_OWNER`` for all), newest first (revoked ones too, so people
    see what was revoked)."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id)
    if owner is not ANY_OWNER:
        query = query.where(ApiToken.user_id == owner)
    async with sessions() as session:
        return list((await session.execute(query)).scalars().all())


async def revoke_token(sessions: Sessions, token_id: uuid.UUID, *, owner: Any) -> ApiToken:
    """Revoke a token of ``owner`` (``ANY_OWNER`` for an admin): it stops working at once; 404 if unknown
    or someone else's (the same answer, so ids of others' tokens cannot be probed)."""
    async with sessions() as session, session.begin():
        row: ApiToken | None = await session.get(ApiToken, token_id)
        if row is None or (owner is not ANY_OWNER and row.user_id != owner):
            raise NotFound(f"no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    return row


def check_token_name(name: str) -> str:
    """A token's label, stripped; 422 if blank or too long."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("invalid token name", [{"field": "name", "message": "1-100 characters"}])
    return name
