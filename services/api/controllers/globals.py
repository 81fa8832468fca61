"""``/api/v1/variables`` and ``/api/v1/secrets``: global values any check may use. Secrets are write-only."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, put
from litestar.params import FromPath

from services.api.checks import CheckStore
from services.api.controllers.shapes import GlobalSet, SecretList, VariableList
from services.api.global_values import load_globals, save_global
from services.common.db.models import Check
from services.common.errors import Conflict, Invalid
from services.common.redaction import MASK

Req = Request[Any, Any, Any]


def _store(request: Req) -> CheckStore:
    state = request.app.state
    return CheckStore(state.sessions, state.bus, state.secretbox)


async def _value(request: Req) -> str:
    try:
        body = await request.json()
    except Exception:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("value"), str):
        raise Invalid('expected {"value": "…"}', [{"field": "value", "message": "a string is required"}])
    value: str = body["value"]
    return value


async def _users(request: Req, kind: str, name: str) -> list[str]:
    from sqlalchemy import select

    from contracts.v1.checks import CheckSpec

    async with request.app.state.sessions() as session:
        rows = (await session.execute(select(Check))).scalars().all()
    return sorted(row.name for row in rows if name in CheckSpec.model_validate(row.spec).referenced(kind))  # type: ignore[arg-type]


class GlobalVariablesController(Controller):
    """Global variables: ``{{ vars.<name> }}`` in any check that has no variable of that name."""

    path = "/api/v1/variables"

    @get("/")
    async def list_variables(self, request: Req) -> VariableList:
        """Every global variable and its value."""
        return {"variables": (await load_globals(request.app.state.sessions)).variables}

    @put("/{name:str}")
    async def put_variable(self, request: Req, name: FromPath[str]) -> GlobalSet:
        """Set a global variable; checks that use it get a new revision."""
        await save_global(request.app.state.sessions, "vars", name, await _value(request))
        changed = await _store(request).refresh_globals("vars", name)
        return {"name": name, "updated_checks": [row.name for row in changed]}

    @delete("/{name:str}", status_code=204)
    async def delete_variable(self, request: Req, name: FromPath[str]) -> None:
        """Delete a global variable no check uses (409 naming the checks that do)."""
        users = await _users(request, "vars", name)
        if users:
            raise Conflict(
                f"variable '{name}' is used by: {', '.join(users)}", [{"field": "name", "message": "in use"}]
            )
        await save_global(request.app.state.sessions, "vars", name, None)


class GlobalSecretsController(Controller):
    """Global secrets: ``{{ secrets.<name> }}``; stored sealed, listed by name only."""

    path = "/api/v1/secrets"

    @get("/")
    async def list_secrets(self, request: Req) -> SecretList:
        """The names of the global secrets (values are write-only)."""
        secrets = (await load_globals(request.app.state.sessions)).secrets
        return {"secrets": {name: MASK for name in sorted(secrets)}}

    @put("/{name:str}")
    async def put_secret(self, request: Req, name: FromPath[str]) -> GlobalSet:
        """Set a global secret (sealed with the deployment key); checks that use it get a new revision."""
        box = request.app.state.secretbox
        await save_global(request.app.state.sessions, "secrets", name, box.seal(await _value(request)))
        changed = await _store(request).refresh_globals("secrets", name)
        return {"name": name, "updated_checks": [row.name for row in changed]}

    @delete("/{name:str}", status_code=204)
    async def delete_secret(self, request: Req, name: FromPath[str]) -> None:
        """Delete a global secret no check uses (409 naming the checks that do)."""
        users = await _users(request, "secrets", name)
        if users:
            raise Conflict(
                f"secret '{name}' is used by: {', '.join(users)}", [{"field": "name", "message": "in use"}]
            )
        await save_global(request.app.state.sessions, "secrets", name, None)
