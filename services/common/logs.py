"""Log output: ``key=value`` text lines (default) or one JSON object per line for log pipelines.

Seymour's log calls already put their facts as ``key=value`` pairs in the message; the JSON formatter lifts
them into fields, so a line about a run carries ``run_id``, ``check_id``, ``region`` and ``slot`` as keys
a log store can index, without a second way of logging.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Final

_PAIR: Final = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")
#: Fields of the record itself; a pair in the message never overwrites them.
_RESERVED: Final = frozenset({"ts", "level", "logger", "message", "exception"})
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"


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
