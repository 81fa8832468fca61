"""One error body for every API failure: ``{"status_code", "detail", "errors": [{"field", "message"}]}``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from pydantic import ValidationError


class ApiError(HTTPException):
    """An HTTP error with optional per-field messages."""

    def __init__(self, status_code: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail)
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
    return part in (
        "slack",
        "discord",
        "teams",
        "webhook",
        "email",
        "pagerduty",
        "function-after[_coherent()]",
    )


def invalid(exc: ValidationError) -> ApiError:
    """A 422 naming every invalid field."""
    errors = field_errors(exc)
    names = ", ".join(error["field"] for error in errors)
    return ApiError(422, f"invalid check configuration: {names}", errors)


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Render any HTTPException (ours or Litestar's) in the one error shape."""
    if isinstance(exc, HTTPException):
        errors = getattr(exc, "errors", [])
        body = {"status_code": exc.status_code, "detail": exc.detail, "errors": errors}
        if exc.extra and not errors:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, headers=exc.headers)
    return Response({"status_code": 500, "detail": "internal server error", "errors": []}, status_code=500)
