"""Failure details: one model per kind, discriminated by ``kind``, in the JSON form incidents already hold."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from contracts.v1 import AssertionFailure, ErrorFailure, MissedFailure, read_failure
from contracts.v1.failures import FAILURE_DETAIL

#: Failure details as alerting stored them before they were models (from services/alerts/outcomes.py
#: of that time): each must read back as its model and dump to the same JSON.
STORED: list[tuple[dict[str, Any], type[BaseModel], str]] = [
    (
        {
            "kind": "assertion",
            "source": "status_code",
            "property": None,
            "comparison": "equals",
            "target": 200,
            "observed": 503,
            "message": None,
        },
        AssertionFailure,
        "status_code equals 200 — actual 503",
    ),
    (
        {
            "kind": "assertion",
            "source": "json_body",
            "property": "$.items.length()",
            "comparison": "greater_than",
            "target": 0,
            "observed": 0,
            "message": None,
            "step": "list",
        },
        AssertionFailure,
        "step 'list': json_body $.items.length() greater_than 0 — actual 0",
    ),
    (
        {"kind": "error", "class": "timeout", "message": "no response within 10 s"},
        ErrorFailure,
        "timeout: no response within 10 s",
    ),
    (
        {"kind": "error", "class": "timeout", "message": "step 'login': no response", "step": "login"},
        ErrorFailure,
        "timeout: step 'login': no response",
    ),
    ({"kind": "missed", "reason": "expired"}, MissedFailure, "missed: expired"),
]


@pytest.mark.parametrize(
    ("stored", "model", "text"), STORED, ids=["assertion", "assertion-step", "error", "error-step", "missed"]
)
def test_stored_details_read_back_as_their_kind_and_keep_their_json(
    stored: dict[str, Any], model: type[BaseModel], text: str
) -> None:
    failure = FAILURE_DETAIL.validate_python(stored)
    assert type(failure) is model
    assert failure.text() == text
    assert FAILURE_DETAIL.dump_python(failure, mode="json") == stored
    assert FAILURE_DETAIL.validate_json(FAILURE_DETAIL.dump_json(failure)) == failure


def test_error_class_travels_as_class() -> None:
    failure = ErrorFailure(cls="dns", message="no such host")
    assert failure.model_dump(mode="json") == {"kind": "error", "class": "dns", "message": "no such host"}


@pytest.mark.parametrize(
    "data",
    [None, {"kind": "budget", "limit": 3}, {"no": "kind"}],
    ids=["nothing", "kind-from-a-newer-producer", "no-kind"],
)
def test_what_cannot_be_read_is_none_rather_than_an_error(data: dict[str, Any] | None) -> None:
    assert read_failure(data) is None
