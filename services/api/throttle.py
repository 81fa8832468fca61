"""Login throttling: failed logins back off per client address and per username (429 + Retry-After).

Per username, so one account cannot be guessed at from many addresses; per address (with a higher
allowance, since many people may share one), so one client cannot try many accounts. Blocked attempts
are refused before any password is hashed. Counts live in this process (``seymour up`` and a single api
process; with several api processes each counts its own) and are bounded in size.

The client address is the request's (``request.client``). Behind a reverse proxy every login arrives from
the proxy's address; ``X-Forwarded-For`` names the real client, but anyone can send that header. The
server (:class:`services.api.server.ApiServer`) reads it only when the peer is in
``SEYMOUR_TRUSTED_PROXIES`` (:func:`trusted_networks`), and then from the right, skipping trusted hops: the
address counted is the last one a trusted proxy saw, never one the client wrote itself. Unset, the header
is ignored (the server's own default trusted 127.0.0.1 whatever the deployment).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

#: The failure (in a row, within ``WINDOW``) at which backoff starts: per username, per client address.
USER_FREE: Final = 5
ADDRESS_FREE: Final = 20
#: The first wait once over the allowance; it doubles with every further failure, up to ``MAX_WAIT``.
FIRST_WAIT: Final = 1.0
MAX_WAIT: Final = 900.0
#: Failures older than this are forgotten.
WINDOW: Final = 3600.0
#: Keys remembered at most (the oldest are forgotten first).
MAX_KEYS: Final = 50_000


@dataclass
class _Record:
    failures: int
    last: float
    blocked_until: float


def trusted_networks(networks: Iterable[str]) -> list[str]:
    """``SEYMOUR_TRUSTED_PROXIES`` (``10.0.0.0/8``, ``::1`` …) as normalised networks, a bare address being
    a network of one. Raises ``ValueError`` naming a value that is neither, so a typo stops the api
    instead of silently trusting no one (or a host name nobody resolves)."""
    parsed = []
    for text in networks:
        try:
            parsed.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"SEYMOUR_TRUSTED_PROXIES: '{text}' is not an address or network") from None
    return parsed


class LoginThrottle:
    """Counts failed logins and says how long a client or an account must wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retry_after(self, address: str, username: str) -> int:
        """Seconds to wait before this attempt may be checked (0: go ahead)."""
        now = self._clock()
        wait = max(self._blocked(f"ip:{address}", now), self._blocked(f"user:{username.lower()}", now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, address: str, username: str) -> int:
        """Record a failed login; returns the seconds the client must now wait (0: none yet)."""
        now = self._clock()
        waits = [
            self._fail(f"ip:{address}", ADDRESS_FREE, now),
            self._fail(f"user:{username.lower()}", USER_FREE, now),
        ]
        return math.ceil(max(waits))

    def succeeded(self, address: str, username: str) -> None:
        """A correct password: the account's count starts over (the address keeps its own)."""
        self._records.pop(f"user:{username.lower()}", None)

    def _blocked(self, key: str, now: float) -> float:
        record = self._records.get(key)
        if record is None:
            return 0.0
        return max(0.0, record.blocked_until - now)

    def _fail(self, key: str, free: int, now: float) -> float:
        record = self._records.pop(key, None)
        if record is None or now - record.last > WINDOW:
            record = _Record(0, now, now)
        record.failures += 1
        record.last = now
        over = record.failures - free + 1
        wait = min(MAX_WAIT, FIRST_WAIT * 2 ** (over - 1)) if over > 0 else 0.0
        record.blocked_until = now + wait
        self._records[key] = record
        while len(self._records) > MAX_KEYS:
            self._records.popitem(last=False)
        return wait
