"""Domain refusals become HTTP statuses in one place, with the fields at fault in the body."""

from __future__ import annotations

import json

import pytest

from services.api.errors import error_handler, status_of
from services.common.errors import Conflict, DomainError, Invalid, NotFound


class NoSuchRegion(NotFound):
    """A narrower refusal still maps by its base kind."""


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("no check with id 1"), 404),
        (NoSuchRegion("no region mars-1"), 404),
        (Conflict("a check named 'x' already exists", [{"field": "name", "message": "already in use"}]), 409),
        (Invalid("invalid check configuration: url", [{"field": "url", "message": "not a URL"}]), 422),
        (DomainError("refused"), 400),
    ],
    ids=["not-found", "subclass", "conflict", "invalid", "unmapped"],
)
def test_each_refusal_has_one_status_and_the_one_error_body(error: DomainError, status: int) -> None:
    assert status_of(error) == status
    response = error_handler(None, error)  # type: ignore[arg-type]
    assert response.status_code == status
    body = json.loads(response.render(response.content, "application/json"))
    assert body == {"status_code": status, "detail": error.detail, "errors": error.errors}
