"""Response headers every answer carries: a Content Security Policy that forbids framing (clickjacking)
and foreign scripts, plus the usual hardening headers."""

from __future__ import annotations

from typing import Any, Final

from litestar import Response

#: Scripts and styles come only from /static (htmx and the chart library are vendored); inline styles
#: are allowed because htmx injects its indicator style; no page may be framed.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: For answers that carry a secret shown once (a new API token): never stored by a browser or proxy.
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def security_headers(response: Response[Any]) -> Response[Any]:
    """Add :data:`HEADERS` to ``response`` (a handler's own value wins)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
