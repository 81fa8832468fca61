"""Log output: ``key=value`` text lines (default) or one JSON object per line for log pipelines.

Seymour's log calls already put their facts as ``key=value`` pairs in the message; the JSON formatter lifts
them into fields, so a line about a run carries ``run_id``, ``check_id``, ``region`` and ``slot`` as keys
a log store can index, without a second way of logging.

Most lines about a run are written far from the message (a database retry, a failed handler, an incident
opened while a result is folded), so the run's facts are also bound once per task: the bus binds the
message it is about to hand to a handler, the scheduler binds the slot it fires (:func:`bind`), and the JSON
formatter adds those facts to every line the task writes next. Binding stores a reference (one contextvar
set per message, no copy); the facts are read only when a line is written in JSON.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

_PAIR: Final = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")
#: Fields of the record itself; a pair in the message never overwrites them.
_RESERVED: Final = frozenset({"ts", "level", "logger", "message", "exception"})
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: The facts of a run (or of a slot, before it has regions) a line about it carries.
RUN_FIELDS: Final = ("run_id", "check_id", "region", "slot")
#: The message (a run, a result, a slot) the current task is working on; its facts go on every JSON line.
_SUBJECT: Final[ContextVar[object]] = ContextVar("seymour_log_subject", default=None)


def bind(subject: object) -> None:
    """Make ``subject`` (a message with some of :data:`RUN_FIELDS` as attributes, or ``None``) what the
    current task's next log lines are about. Each delivery and each fired slot runs in its own task, so a
    binding ends with the task; a long-lived consuming loop rebinds (or binds ``None``) per message."""
    _SUBJECT.set(subject)


def bound_fields() -> dict[str, str]:
    """The run facts bound to the current task (empty when it works on no run)."""
    subject = _SUBJECT.get()
    if subject is None:
        return {}
    found: dict[str, str] = {}
    for name in RUN_FIELDS:
        value = getattr(subject, name, None)
        if value is not None:
            found[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    return found


def fields_of(message: str) -> dict[str, str]:
    """The ``key=value`` pairs of a log message (quotes around a value are dropped)."""
    found: dict[str, str] = {}
    for key, value in _PAIR.findall(message):
        if key not in _RESERVED and key not in found:
            found[key] = value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the message's pairs, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            **bound_fields(),
            **fields_of(message),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, log_format: str = "text") -> None:
    """Root logging on stderr in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
