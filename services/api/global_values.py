"""Global variables and secrets that any check may use: ``{{ vars.x }}``, ``{{ secrets.x }}``.

Stored in the ``settings`` table: variables in clear, secrets sealed with the deployment key. A check
keeps copies of the globals it uses (``global_variables``, ``global_secrets``) so a run needs nothing
but its message; saving a check refreshes its copies, and changing a global refreshes every check
that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from contracts.v1.base import utcnow
from contracts.v1.checks import CheckSpec
from contracts.v1.templates import NAME_RE
from services.common.db.models import Setting
from services.common.errors import Invalid

VARIABLES_KEY: Final = "global_variables"
SECRETS_KEY: Final = "global_secrets"
MAX_VALUE_CHARS: Final = 8192


@dataclass(frozen=True)
class Globals:
    """The global variables (clear) and secrets (sealed)."""

    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


async def load_globals(sessions: object) -> Globals:
    """The current globals."""
    async with sessions() as session:  # type: ignore[operator]
        variables = await session.get(Setting, VARIABLES_KEY)
        secrets = await session.get(Setting, SECRETS_KEY)
    return Globals(dict(variables.value) if variables else {}, dict(secrets.value) if secrets else {})


async def save_global(sessions: object, kind: str, name: str, value: str | None) -> Globals:
    """Set (or with ``value=None`` delete) one global; ``value`` of a secret is already sealed."""
    if not NAME_RE.fullmatch(name):
        raise Invalid(
            f"'{name}' is not a valid name", [{"field": "name", "message": "letters, digits, '_' or '-'"}]
        )
    if value is not None and len(value) > MAX_VALUE_CHARS:
        raise Invalid(
            "value too long", [{"field": "value", "message": f"at most {MAX_VALUE_CHARS} characters"}]
        )
    key = VARIABLES_KEY if kind == "vars" else SECRETS_KEY
    async with sessions() as session, session.begin():  # type: ignore[operator]
        row = await session.get(Setting, key)
        values = dict(row.value) if row else {}
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
        await session.merge(Setting(key=key, value=values, updated_at=utcnow()))
    return await load_globals(sessions)


def with_globals(spec: CheckSpec, found: Globals) -> CheckSpec:
    """``spec`` with fresh copies of the globals it uses; 422 naming each variable or secret that is
    neither the check's own nor global."""
    variables = {
        name: found.variables[name]
        for name in sorted(spec.referenced("vars") - set(spec.variables))
        if name in found.variables
    }
    secrets = {
        name: found.secrets[name]
        for name in sorted(spec.referenced("secrets") - set(spec.secrets))
        if name in found.secrets
    }
    errors = [
        {
            "field": "variables",
            "message": f"{{{{ vars.{name} }}}} is neither a variable of the check nor global",
        }
        for name in sorted(spec.referenced("vars") - set(spec.variables) - set(variables))
    ] + [
        {
            "field": "secrets",
            "message": f"{{{{ secrets.{name} }}}} is neither a secret of the check nor global",
        }
        for name in sorted(spec.referenced("secrets") - set(spec.secrets) - set(secrets))
    ]
    if errors:
        raise Invalid("the check uses variables or secrets that do not exist", errors)
    return spec.model_copy(update={"global_variables": variables, "global_secrets": secrets})
