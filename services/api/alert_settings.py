"""Global alert defaults (policy and maintenance windows) read from request data, for the API and the UI."""

from __future__ import annotations

from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from contracts.v1 import AlertPolicy, MaintenanceWindow
from services.api.errors import field_errors

_WINDOWS: Final[TypeAdapter[list[MaintenanceWindow]]] = TypeAdapter(list[MaintenanceWindow])

#: What ``parse_alert_settings`` leaves alone: a part absent from the request is not changed.
ABSENT: Final = object()


def parse_alert_settings(
    policy_data: Any = ABSENT, windows_data: Any = ABSENT
) -> tuple[AlertPolicy | None, list[MaintenanceWindow] | None, list[dict[str, str]]]:
    """Validate the parts given; returns them (``None`` where absent) and every error with its field
    (``alert_policy.failure_threshold``, ``maintenance.0.end`` …)."""
    errors: list[dict[str, str]] = []
    policy = windows = None
    if policy_data is not ABSENT:
        try:
            policy = AlertPolicy.model_validate(policy_data)
        except ValidationError as exc:
            errors += field_errors(exc, "alert_policy.")
    if windows_data is not ABSENT:
        try:
            windows = _WINDOWS.validate_python(windows_data)
        except ValidationError as exc:
            errors += field_errors(exc, "maintenance.")
    return policy, windows, errors
