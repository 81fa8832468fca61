"""Why one region's run counts against a check, as alerting keeps it: the first failing assertion, the
error that left no usable response, or the run that never ran.

A discriminated union on ``kind``. The JSON form is the one alerting has always stored in incidents
(``{"kind": "error", "class": "timeout", "message": …}``), so incidents written before the models
existed read back unchanged, and a failure that names no step carries no ``step`` key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError


class _Failure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, serialize_by_alias=True)

    #: The step of a multi-step check that failed; absent from the JSON when there is none.
    step: str | None = Field(default=None, exclude_if=lambda value: value is None)

    def _in_step(self, text: str) -> str:
        """``text`` naming the step, unless it already does (a runner's message often names it)."""
        return f"step '{self.step}': {text}" if self.step and f"'{self.step}'" not in text else text


class AssertionFailure(_Failure):
    """An assertion that did not hold: what it compared, what it expected and what it observed."""

    kind: Literal["assertion"] = "assertion"
    source: str = ""
    property: str | None = None
    comparison: str = ""
    target: Any = None
    observed: Any = None
    message: str | None = None

    def text(self) -> str:
        """One line: ``step 'login': status_code equals 200 — actual 503``."""
        what = f"{self.source} {self.property}" if self.property else self.source
        line = f"{what} {self.comparison}"
        if self.target is not None:
            line += f" {self.target!r}"
        line += f" — actual {self.observed!r}"
        return f"step '{self.step}': {line}" if self.step else line


class ErrorFailure(_Failure):
    """No usable response: the error's class (``timeout``, ``dns``, …) and message."""

    kind: Literal["error"] = "error"
    cls: str = Field(default="error", alias="class")
    message: str = ""

    def text(self) -> str:
        """One line: ``timeout: no response within 10 s``."""
        return self._in_step(f"{self.cls}: {self.message}".strip())


class MissedFailure(_Failure):
    """The run never started (``reason`` as in ``RunMissed``)."""

    kind: Literal["missed"] = "missed"
    reason: str

    def text(self) -> str:
        """One line: ``missed: expired``."""
        return self._in_step(f"missed: {self.reason}")


FailureDetail = Annotated[AssertionFailure | ErrorFailure | MissedFailure, Field(discriminator="kind")]

FAILURE_DETAIL: Final[TypeAdapter[AssertionFailure | ErrorFailure | MissedFailure]] = TypeAdapter(
    FailureDetail
)


def read_failure(
    data: AssertionFailure | ErrorFailure | MissedFailure | Mapping[str, Any] | None,
) -> AssertionFailure | ErrorFailure | MissedFailure | None:
    """``data`` as a failure model; ``None`` for nothing, or for a kind this version does not know (a
    newer producer's), which readers show as the bare status rather than fail on."""
    if data is None or isinstance(data, AssertionFailure | ErrorFailure | MissedFailure):
        return data
    try:
        return FAILURE_DETAIL.validate_python(dict(data))
    except ValidationError:
        return None


#: A failure read back from storage or a peer: an unknown kind (a newer producer's) reads as ``None``
#: instead of failing the whole record that holds it.
ReadFailure = Annotated[FailureDetail | None, BeforeValidator(read_failure)]
