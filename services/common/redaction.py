"""What counts as a secret and how it is masked: one redaction for every place a request, a check or a
run is shown, stored or exported (runner records, API views, pages, ``seymour export``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: What a masked value is replaced with.
MASK: Final = "********"
#: Header, query and JSON key names whose values are secrets (``X-Auth-Key``, ``api_key``, ``sig`` …).
SENSITIVE: Final = re.compile(
    r"auth|cookie|token|secret|api[-_]?key|[-_.]key$|^key$|passw|passwd|pwd|session|signature|^sig$"
    r"|credential|access[-_]?key",
    re.I,
)
#: Response header values that are secrets whatever the header's name says.
BEARER: Final = re.compile(r"(?i)\b(bearer|basic|token)\s+(?!\*{8})[A-Za-z0-9._~+/=-]{4,}")


def is_secret_name(name: str, marked: Iterable[str] = ()) -> bool:
    """Whether a header, query or field called ``name`` holds a secret (by its name or marked so)."""
    return bool(SENSITIVE.search(name)) or name.lower() in {item.lower() for item in marked}


def redact_headers(headers: Mapping[str, str], marked: Iterable[str] = ()) -> dict[str, str]:
    """``headers`` with secret values (by name, or listed in ``marked``) masked."""
    secret = {item.lower() for item in marked}
    return {
        name: (MASK if SENSITIVE.search(name) or name.lower() in secret else value)
        for name, value in headers.items()
    }


def redact_url(url: str) -> str:
    """``url`` with its userinfo password and secret-looking query values masked (host and path kept)."""
    if MASK in url and "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SENSITIVE.search(key) for key, _ in pairs):
            query = urlencode(
                [(key, MASK if SENSITIVE.search(key) else value) for key, value in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with the values of secret-looking keys masked, at any depth."""
    if isinstance(value, dict):
        return {
            key: (MASK if isinstance(key, str) and SENSITIVE.search(key) else redact_json(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value


def redact_text(text: str) -> str:
    """Free text (a response body sample, an error) with bearer tokens and ``key=value`` secrets masked.

    Linear in the text: a pair's key is only tried where a word starts (a runner redacts every response
    sample on its event loop; scanning each word from each of its letters was quadratic, ~5 s for an
    8 KB sample of letters)."""
    text = BEARER.sub(lambda match: f"{match.group(1)} {MASK}", text)
    return _PAIR.sub(_mask_pair, text)


def _mask_pair(match: re.Match[str]) -> str:
    if not _SECRET_KEY.search(match.group(2)):
        return match.group(0)
    return f"{match.group(1)}{match.group(3)}{MASK}"


_SECRET_KEY: Final = re.compile(
    r"token|secret|password|passwd|api[-_]?key|session|authorization|auth[-_]?key", re.I
)
_PAIR: Final = re.compile(
    r"""(?i)(?<![\w-])(["']?([\w-]++)\\?["']?)"""
    r"""(\s*[:=]\s*\\?["']?)(?!\*{8}|(?i:bearer|basic|token)\s)[^"'\\\s,&;}]{4,}"""
)


def redact_response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers as stored: ``Set-Cookie`` and other secret-named values masked, tokens in any
    other value masked."""
    return {name: (MASK if SENSITIVE.search(name) else redact_text(value)) for name, value in headers.items()}


def redact_request_record(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored run's request as shown: URL, headers and body redacted (again, for runs recorded before
    a name was known to be secret)."""
    if record is None:
        return None
    out = dict(record)
    if isinstance(out.get("url"), str):
        out["url"] = redact_url(out["url"])
    if isinstance(out.get("headers"), Mapping):
        out["headers"] = redact_headers(out["headers"])
    body = out.get("body")
    out["body"] = redact_json(body) if isinstance(body, dict | list) else redact_text(body) if body else body
    return out


def redact_response_sample(sample: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored response sample as shown: ``Set-Cookie``, secret-named headers and body tokens masked."""
    if sample is None:
        return None
    out = dict(sample)
    if isinstance(out.get("headers"), Mapping):
        out["headers"] = redact_response_headers(out["headers"])
    if isinstance(out.get("body"), str):
        out["body"] = redact_text(out["body"])
    return out


def redact_step(step: Any) -> Any:
    """One step of a stored multi-step run as shown: its request and response redacted."""
    if not isinstance(step, Mapping):
        return step
    out = dict(step)
    if isinstance(out.get("request"), Mapping):
        out["request"] = redact_request_record(out["request"])
    if isinstance(out.get("response"), Mapping):
        out["response"] = redact_response_sample(out["response"])
    return out
