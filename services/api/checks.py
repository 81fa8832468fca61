"""Check configuration: validate, store a new revision, and tell the scheduler (``CheckChanged``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from contracts.v1 import CheckChanged, CheckDue, CheckSpec, run_id_for
from contracts.v1.base import utcnow
from contracts.v1.checks import SAVING
from services.api.errors import invalid
from services.api.global_values import Globals, load_globals, with_globals
from services.api.redaction import redact_spec, restore_secrets
from services.common.bus import Publisher
from services.common.db.models import Check, CheckTag, Run
from services.common.db.sessions import Sessions
from services.common.errors import Conflict, Invalid, NotFound
from services.common.redaction import MASK
from services.common.sealing import is_header_secret, open_spec, seal_spec
from services.common.secretbox import Sealer, SealError, is_sealed

log = logging.getLogger(__name__)


def check_view(row: Check, box: Sealer | None) -> dict[str, Any]:
    """A check as the API shows it: its spec (secrets masked) plus identity and bookkeeping. What is
    sealed at rest is opened with ``box`` first, so it is masked exactly as typed (a Slack URL shows its
    host); a value the key cannot open shows as the mask."""
    return {
        "id": str(row.id),
        "revision": row.revision,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        **redact_spec(open_spec(row.spec, box, strict=False)),
    }


def opened_stored(stored: dict[str, Any] | None, box: Sealer | None) -> dict[str, Any] | None:
    """A stored spec as it was typed (header and channel secrets opened), for keeping masked values;
    422 when the deployment key cannot open it (its secrets must then be typed again)."""
    if stored is None:
        return None
    try:
        return open_spec(stored, box)
    except SealError:
        raise Invalid(
            "the stored secrets do not open with this deployment key: enter them again",
            [{"field": "secrets", "message": "sealed with another deployment key"}],
        ) from None


def seal_secrets(data: dict[str, Any], stored: dict[str, Any] | None, box: Sealer | None) -> dict[str, Any]:
    """``data`` with its ``secrets`` sealed: a value in clear is sealed with ``box``, a masked one keeps
    the stored sealed value; the global copies are the api's to set, never the caller's."""
    data = {key: value for key, value in data.items() if key not in ("global_variables", "global_secrets")}
    incoming = data.get("secrets")
    if not isinstance(incoming, dict):
        return data
    kept = (stored or {}).get("secrets") or {}
    sealed: dict[str, Any] = {}
    errors = []
    for name, value in incoming.items():
        if is_header_secret(name):
            errors.append({"field": f"secrets.{name}", "message": "this name is reserved"})
        elif value == MASK and name in kept:
            sealed[name] = kept[name]
        elif not isinstance(value, str) or value == MASK or is_sealed(value):
            errors.append(
                {"field": f"secrets.{name}", "message": "give the secret's value (it is write-only)"}
            )
        elif box is None:
            errors.append(
                {"field": f"secrets.{name}", "message": "no deployment key to encrypt secrets with"}
            )
        else:
            sealed[name] = box.seal(value)
    if errors:
        raise Invalid(
            "secrets are write-only: send each value in clear to set it, or the mask to keep it", errors
        )
    return {**data, "secrets": sealed}


def parse_spec(data: Any, stored: dict[str, Any] | None = None, box: Sealer | None = None) -> CheckSpec:
    """Validate request JSON as a ``CheckSpec`` (after restoring masked secrets from ``stored``, the
    stored spec, and sealing new check secrets with ``box``); 422 on any error. Secret headers and
    channel secrets come back in clear: :class:`CheckStore` seals them when it stores or sends the spec."""
    if not isinstance(data, dict):
        raise Invalid(
            "the body must be a JSON object describing a check",
            [{"field": "body", "message": "expected an object"}],
        )
    data = {
        key: value for key, value in data.items() if key not in ("id", "revision", "created_at", "updated_at")
    }
    if data.get("steps"):  # request/assertions are the first step's: taken from it, never out of step
        data.pop("request", None)
        data.pop("assertions", None)
    stored = opened_stored(stored, box)
    data = seal_secrets(data, stored, box)
    try:
        spec = CheckSpec.model_validate(restore_secrets(data, stored), context=SAVING)
    except ValidationError as exc:
        raise invalid(exc) from None
    reserved = sorted(name for name in spec.referenced("secrets") if is_header_secret(name))
    if reserved:  # they hold secret headers' values: a reference elsewhere would show one in clear
        raise Invalid(
            "these secrets are not for use in a request: " + ", ".join(reserved),
            [{"field": "secrets", "message": f"{{{{ secrets.{name} }}}} is reserved"} for name in reserved],
        )
    return spec


def _name_taken(name: str) -> Conflict:
    """409: names are unique, because ``seymour apply`` finds checks by name."""
    return Conflict(
        f"a check named '{name}' already exists", [{"field": "name", "message": "already in use"}]
    )


async def _store_tags(session: Any, check_id: uuid.UUID, tags: list[str]) -> None:
    """Make ``check_tags`` say exactly ``tags`` for a check (inside the caller's transaction)."""
    await session.execute(delete(CheckTag).where(CheckTag.check_id == check_id))
    session.add_all(CheckTag(check_id=check_id, tag=tag) for tag in tags)


def manual_slot() -> datetime:
    """The slot of a run started by hand: now, read once, to the millisecond (what the wire keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


#: Reads and writes of one edit before giving up on a check that keeps changing under it.
_REVISE_ATTEMPTS = 5


@dataclass
class CheckStore:
    """Check persistence plus the events that must follow each change."""

    sessions: Sessions
    bus: Publisher
    box: Sealer | None = None

    def sealed(self, spec: CheckSpec) -> CheckSpec:
        """``spec`` with its secret headers and channel secrets sealed (see :mod:`services.common.sealing`):
        what is stored and what is sent on the bus. Without a box (some tests) it is left as it is."""
        if self.box is None:
            return spec
        return CheckSpec.model_validate(seal_spec(spec.model_dump(mode="json"), self.box))

    async def page(self, *, limit: int, offset: int, tag: str | None = None) -> tuple[list[Check], int]:
        """Checks by name (only those tagged ``tag`` when given), a page at a time, and how many."""
        query = select(Check)
        count = select(func.count()).select_from(Check)
        if tag:
            tagged = select(CheckTag.check_id).where(CheckTag.tag == tag)
            query = query.where(Check.id.in_(tagged))
            count = count.where(Check.id.in_(tagged))
        async with self.sessions() as session:
            rows = (
                (await session.execute(query.order_by(Check.name, Check.id).limit(limit).offset(offset)))
                .scalars()
                .all()
            )
            total = (await session.execute(count)).scalar_one()
        return list(rows), int(total)

    async def tagged(self, tag: str) -> list[Check]:
        """Every check tagged ``tag``, by name."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(Check)
                .where(Check.id.in_(select(CheckTag.check_id).where(CheckTag.tag == tag)))
                .order_by(Check.name, Check.id)
            )
            return list(rows.scalars().all())

    async def tags(self) -> list[tuple[str, int]]:
        """Every tag in use with how many checks carry it, by tag."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(CheckTag.tag, func.count()).group_by(CheckTag.tag).order_by(CheckTag.tag)
            )
            return [(tag, int(count)) for tag, count in rows]

    async def set_enabled_by_tag(self, tag: str, enabled: bool) -> list[Check]:
        """Pause or resume every check tagged ``tag``; returns the checks that changed."""
        changed = []
        for row in await self.tagged(tag):
            if row.enabled != enabled:
                changed.append(await self.set_enabled(row.id, enabled))
        return changed

    async def get(self, check_id: uuid.UUID) -> Check:
        """One check, or 404."""
        async with self.sessions() as session:
            row: Check | None = await session.get(Check, check_id)
        if row is None:
            raise NotFound(f"no check with id {check_id}")
        return row

    async def by_name(self, name: str) -> Check | None:
        """The check called ``name``, if any."""
        async with self.sessions() as session:
            found: Check | None = (
                await session.execute(select(Check).where(Check.name == name))
            ).scalar_one_or_none()
        return found

    async def create(self, spec: CheckSpec) -> Check:
        """Store a new check (409 if the name is taken, 422 if it uses an unknown variable or secret)
        and announce it."""
        spec = self.sealed(spec)
        spec = with_globals(spec, await self._globals_for(spec))
        now = utcnow()
        row = Check(
            id=uuid.uuid4(),
            name=spec.name,
            spec=spec.model_dump(mode="json"),
            enabled=spec.enabled,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
                await session.flush()
                session.add_all(
                    CheckTag(check_id=row.id, tag=tag) for tag in spec.tags
                )  # a new id: none to clear
        except IntegrityError:
            raise _name_taken(spec.name) from None
        await self._announce(row, "created")
        return row

    async def update(self, check_id: uuid.UUID, spec: CheckSpec, found: Globals | None = None) -> Check:
        """Store a new revision of a check (with fresh copies of the globals it uses) and announce it."""
        return await self.revise(check_id, lambda _: spec, found)

    async def revise(
        self, check_id: uuid.UUID, make: Callable[[Check], CheckSpec], found: Globals | None = None
    ) -> Check:
        """Store a new revision made by ``make`` from the stored check, and announce it. Whatever ``make``
        raises (422) leaves the check as it was.

        One transaction on one pooled connection, and no lock while ``make`` runs: the check is read
        plainly, ``make`` runs (form or JSON validation, secrets kept from the stored spec, sealing), and
        one ``UPDATE … WHERE revision = <the one read>`` writes it; if another edit landed in between, the
        stored check is read again and ``make`` runs again. A row lock taken before ``make`` was held for as
        long as the event loop took to come back to this request: under load every other edit of the
        check queued behind it."""
        try:
            async with self.sessions() as session, session.begin():
                for _ in range(_REVISE_ATTEMPTS):
                    current: Check | None = (
                        await session.execute(
                            select(Check)
                            .where(Check.id == check_id)
                            .execution_options(populate_existing=True)
                        )
                    ).scalar_one_or_none()
                    if current is None:
                        raise NotFound(f"no check with id {check_id}")
                    read_revision, read_tags = current.revision, list(current.spec.get("tags") or [])
                    spec = self.sealed(make(current))
                    spec = with_globals(spec, found if found is not None else await self._globals_for(spec))
                    row: Check | None = (
                        await session.execute(
                            update(Check)
                            .where(Check.id == check_id, Check.revision == read_revision)
                            .values(
                                name=spec.name,
                                spec=spec.model_dump(mode="json"),
                                enabled=spec.enabled,
                                revision=read_revision + 1,
                                updated_at=utcnow(),
                            )
                            .returning(Check)
                            .execution_options(synchronize_session=False, populate_existing=True)
                        )
                    ).scalar_one_or_none()
                    if row is None:
                        continue  # another edit landed since the read: read it again
                    if spec.tags != read_tags:  # most edits keep the tags: two statements spared
                        await _store_tags(session, check_id, spec.tags)
                    break
                else:
                    raise Conflict(f"check {check_id} kept changing while it was being saved; try again")
        except IntegrityError:
            raise _name_taken(spec.name) from None
        await self._announce(row, "updated")
        return row

    async def _globals_for(self, spec: CheckSpec) -> Globals:
        """The globals, read only when ``spec`` uses a variable or secret it does not hold itself: most
        checks use none, and the read cost every save a session of its own."""
        if spec.referenced("vars") <= set(spec.variables) and spec.referenced("secrets") <= set(spec.secrets):
            return Globals()
        return await load_globals(self.sessions)

    async def set_enabled(self, check_id: uuid.UUID, enabled: bool) -> Check:
        """Pause or resume a check."""
        row = await self.get(check_id)
        spec = CheckSpec.model_validate({**row.spec, "enabled": enabled})
        return await self.update(check_id, spec)

    async def refresh_globals(self, kind: str, name: str) -> list[Check]:
        """After global ``kind.name`` changed: store a new revision of every check that uses it."""
        found = await load_globals(self.sessions)
        async with self.sessions() as session:
            rows = list((await session.execute(select(Check))).scalars().all())
        changed = []
        for row in rows:
            spec = CheckSpec.model_validate(row.spec)
            if name in spec.referenced("vars" if kind == "vars" else "secrets"):
                changed.append(await self.update(row.id, spec, found))
        return changed

    async def delete(self, check_id: uuid.UUID) -> None:
        """Delete a check (its stored runs stay until retention removes them) and announce it."""
        async with self.sessions() as session, session.begin():
            row = await session.get(Check, check_id)
            if row is None:
                raise NotFound(f"no check with id {check_id}")
            revision = row.revision + 1
            await session.delete(row)
        await self.bus.publish(CheckChanged(check_id=check_id, change="deleted", revision=revision))

    async def _announce(self, row: Check, change: Literal["created", "updated"]) -> None:
        spec = CheckSpec.model_validate(row.spec)
        await self.bus.publish(CheckChanged(check_id=row.id, change=change, revision=row.revision, spec=spec))

    async def run_now(self, row: Check) -> tuple[datetime, list[uuid.UUID]]:
        """Run a check at once from all its regions; returns the slot and the run ids to wait for."""
        spec = CheckSpec.model_validate(row.spec)
        slot = manual_slot()
        await self.bus.publish(
            CheckDue(
                check_id=row.id,
                slot=slot,
                revision=row.revision,
                spec=spec,
                trigger="manual",
                regions=list(spec.regions),
            )
        )
        return slot, [run_id_for(row.id, slot, region, "manual") for region in spec.regions]

    async def try_once(self, spec: CheckSpec) -> Run | None:
        """Run an unsaved spec once from its first region (a throwaway check id, so nothing of it is
        scheduled, alerted on or listed); returns the stored run, or ``None`` if it did not finish."""
        check_id = uuid.uuid4()
        region = spec.regions[0]
        spec = self.sealed(spec)
        slot = manual_slot()
        await self.bus.publish(
            CheckDue(check_id=check_id, slot=slot, revision=0, spec=spec, trigger="manual", regions=[region])
        )
        teardown = spec.timeout if spec.teardown else 0.0
        runs = await self.wait_for_runs(
            [run_id_for(check_id, slot, region, "manual")], spec.timeout + teardown + 5
        )
        return runs[0] if runs else None

    async def wait_for_runs(self, run_ids: list[uuid.UUID], within: float) -> list[Run]:
        """Poll until every run is stored or ``within`` seconds pass; returns those stored."""
        deadline = time.monotonic() + within
        delay = 0.02
        while True:
            async with self.sessions() as session:
                rows = (await session.execute(select(Run).where(Run.run_id.in_(run_ids)))).scalars().all()
            if len(rows) == len(run_ids) or time.monotonic() >= deadline:
                order = {run_id: index for index, run_id in enumerate(run_ids)}
                return sorted(rows, key=lambda run: order[run.run_id])
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 0.25)
