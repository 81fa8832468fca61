"""Seymour's exceptions.

::

    SeymourError
     ├── BusError
     │    ├── Unroutable          a mandatory publish matched no queue (e.g. a region with no runner queue)
     │    ├── NotConfirmed        the broker nacked or did not confirm a publish in time
     │    └── BusClosed           publish or subscribe on a bus that is not running
     ├── MalformedMessage         bytes that are not a v1 message: dead-lettered, never retried
     └── DomainError              a request the domain refuses; the api maps each kind to one HTTP status
          ├── NotFound            the thing asked for does not exist
          ├── Conflict            it would clash with what is stored (a taken name, the last admin)
          └── Invalid             bad input, with the fields at fault
"""

from __future__ import annotations

from collections.abc import Iterable


class SeymourError(Exception):
    """Base of every error Seymour raises on purpose."""


class BusError(SeymourError):
    """The bus could not do what was asked."""


class Unroutable(BusError):
    """A publish that must reach a queue matched none."""


class NotConfirmed(BusError):
    """The broker did not confirm a publish."""


class BusClosed(BusError):
    """The bus is not running."""


class MalformedMessage(SeymourError):
    """A message body that does not decode to a known v1 message."""


class DomainError(SeymourError):
    """A refusal by domain code, said without HTTP: the api's one error handler picks the status.

    ``errors`` name the fields at fault as ``{"field", "message"}`` (dotted paths, as the api returns them).
    """

    def __init__(self, detail: str, errors: Iterable[dict[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[dict[str, str]] = list(errors)


class NotFound(DomainError):
    """The thing asked for does not exist."""


class Conflict(DomainError):
    """The change would clash with what is stored."""


class Invalid(DomainError):
    """The input is wrong; ``errors`` say which fields and why."""
