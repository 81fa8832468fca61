"""One error body for every API failure: ``{"status_code", "detail", "errors": [{"field", "message"}]}``.

Domain code raises :class:`~services.common.errors.DomainError`; :data:`STATUS` is the one place that
says which HTTP status each kind becomes.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException
from pydantic import ValidationError

from services.common.channels import CHANNELS
from services.common.errors import Conflict, DomainError, Invalid, NotFound

#: The HTTP status of each domain refusal (the most specific class wins).
STATUS: Final[dict[type[DomainError], int]] = {NotFound: 404, Conflict: 409, Invalid: 422}


class ApiError(HTTPException):
    """An HTTP error with optional per-field messages."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.errors = errors or []


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic errors as ``field`` (dotted path, e.g. ``assertions.1.target``) and ``message``."""
    out = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        field = ".".join(location)
        message = error["msg"].removeprefix("Value error, ")
        out.append(
            {"field": f"{prefix}{field}" if field else prefix.rstrip(".") or "body", "message": message}
        )
    return out


def _is_union_tag(part: Any) -> bool:
    """A discriminated union's tag in an error location (``alerts.0.slack.url``): not a field name."""
    return part in CHANNELS or part == "function-after[_coherent()]"


def invalid(exc: ValidationError) -> Invalid:
    """A refusal naming every invalid field."""
    errors = field_errors(exc)
    names = ", ".join(error["field"] for error in errors)
    return Invalid(f"invalid check configuration: {names}", errors)


def status_of(exc: DomainError) -> int:
    """The HTTP status a domain refusal is answered with."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Render a domain refusal or any HTTPException (ours or Litestar's) in the one error shape."""
    if isinstance(exc, DomainError):
        status = status_of(exc)
        return Response(
            {"status_code": status, "detail": exc.detail, "errors": exc.errors}, status_code=status
        )
    if isinstance(exc, HTTPException):
        errors = getattr(exc, "errors", [])
        body = {"status_code": exc.status_code, "detail": exc.detail, "errors": errors}
        if exc.extra and not errors:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, headers=exc.headers)
    return Response({"status_code": 500, "detail": "internal server error", "errors": []}, status_code=500)
