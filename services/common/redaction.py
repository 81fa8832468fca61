"""What counts as a secret, for every place that masks one (stored requests, API views, logs)."""

from __future__ import annotations

import re
from typing import Final

#: What a masked value is replaced with.
MASK: Final = "********"
#: Header, query and JSON key names whose values are secrets.
SENSITIVE: Final = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password|session", re.I)
