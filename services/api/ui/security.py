"""The UI's gate: a session cookie for every page, a CSRF token on every state-changing request."""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Final

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from services.api.accounts import SESSION_LIFETIME, SessionUser, load_session
from services.api.permissions import SAFE_METHODS, grants, remember

SESSION_COOKIE: Final = "seymour_session"
LOGIN_CSRF_COOKIE: Final = "seymour_login_csrf"
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "_csrf"


class LoginRequired(HTTPException):
    """No valid session: pages redirect to the login page."""

    status_code = 401


class CsrfRejected(HTTPException):
    """A state-changing request without the session's CSRF token."""

    status_code = 403


def session_cookie(value: str, *, secure: bool) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure when the site is served over HTTPS."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )


def expired_cookie(key: str, *, secure: bool) -> Cookie:
    """A cookie that removes ``key`` from the browser."""
    return Cookie(key=key, value="", httponly=True, secure=secure, samesite="lax", path="/", max_age=0)


def login_csrf_cookie(value: str, *, secure: bool) -> Cookie:
    """Double-submit token for the login form (there is no session yet to hold one)."""
    return Cookie(
        key=LOGIN_CSRF_COOKIE, value=value, httponly=True, secure=secure, samesite="strict", path="/login"
    )


def new_csrf() -> str:
    """A fresh random CSRF token."""
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two tokens; ``False`` if either is missing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def session_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admit a request with a live session; unsafe methods must also carry the session's CSRF token
    (``X-CSRF-Token`` header, sent by htmx, or the ``_csrf`` form field)."""
    session_id = connection.cookies.get(SESSION_COOKIE)
    user = await load_session(connection.app.state.reads, session_id) if session_id else None
    if user is None:
        raise LoginRequired(detail="log in first")
    connection.state.user = user
    remember(connection, grants(user.role), user.user_id)
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    given = connection.headers.get(CSRF_HEADER)
    if given is None and isinstance(connection, Request):
        form = await connection.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not same_token(given, user.csrf_token):
        raise CsrfRejected(detail="missing or wrong CSRF token: reload the page and try again")


def current_user(request: Request[Any, Any, Any]) -> SessionUser:
    """The session's user (set by :func:`session_guard`)."""
    user: SessionUser = request.state.user
    return user


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """Whether htmx sent this request (it then wants a fragment, not a page)."""
    return request.headers.get("hx-request") == "true"


def login_redirect(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Send someone without a session to the login page (htmx: a full-page redirect)."""
    if is_htmx(request):
        return Response("", status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method not in SAFE_METHODS or not target.startswith("/"):
        target = "/"
    return Redirect("/login", query_params={"next": target}, status_code=303)


def csrf_rejected(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    """A plain 403 page for a request without its CSRF token."""
    return Response(
        "Forbidden: this form has expired or did not come from Seymour. Reload the page and try again.",
        status_code=403,
        media_type="text/plain",
    )


def safe_next(value: str | None) -> str:
    """Where to go after login: only local paths (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"
