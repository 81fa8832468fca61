"""Seymour's exceptions.

::

    SeymourError
     ├── BusError
     │    ├── Unroutable          a mandatory publish matched no queue (e.g. a region with no runner queue)
     │    ├── NotConfirmed        the broker nacked or did not confirm a publish in time
     │    └── BusClosed           publish or subscribe on a bus that is not running
     ├── MalformedMessage         bytes that are not a v1 message: dead-lettered, never retried
     └── NotLeader                a scheduler lost its lease (fenced by epoch)
"""

from __future__ import annotations


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


class NotLeader(SeymourError):
    """This scheduler is not (or no longer) the leader."""
