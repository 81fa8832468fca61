"""Login and logout: the only UI routes reachable without a session (besides static files)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from services.api.accounts import authenticate, close_session, load_session, open_session
from services.api.throttle import LoginThrottle
from services.api.ui.security import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CsrfRejected,
    LoginRequired,
    csrf_rejected,
    expired_cookie,
    login_csrf_cookie,
    login_redirect,
    new_csrf,
    safe_next,
    same_token,
    session_cookie,
    session_guard,
)

log = logging.getLogger(__name__)

Req = Request[Any, Any, Any]


def _secure(request: Req) -> bool:
    """Cookies are ``Secure`` when asked to, when this request came over HTTPS, or when the public URL
    is HTTPS (TLS ended by a proxy in front)."""
    settings = request.app.state.settings
    return bool(
        settings.secure_cookies
        or request.url.scheme == "https"
        or (settings.base_url or "").lower().startswith("https://")
    )


def _login_page(
    request: Req,
    *,
    next_path: str,
    error: str | None,
    username: str,
    status_code: int,
    retry_after: int = 0,
) -> Template:
    token = new_csrf()
    return Template(
        template_name="pages/login.html",
        context={"csrf": token, "next": next_path, "error": error, "username": username, "user": None},
        status_code=status_code,
        cookies=[login_csrf_cookie(token, secure=_secure(request))],
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )


def _throttle(request: Req) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _too_many(request: Req, next_path: str, username: str, wait: int) -> Template:
    return _login_page(
        request,
        next_path=next_path,
        error=f"Too many failed logins. Try again in {wait} seconds.",
        username=username,
        status_code=429,
        retry_after=wait,
    )


@get("/login", include_in_schema=False)
async def login_form(request: Req, next: FromQuery[str | None] = None) -> Template | Redirect:
    """The login page (straight on to ``next`` for someone already logged in)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and await load_session(request.app.state.sessions, session_id):
        return Redirect(safe_next(next), status_code=303)
    return _login_page(request, next_path=safe_next(next), error=None, username="", status_code=200)


@post("/login", include_in_schema=False)
async def login(request: Req) -> Template | Redirect:
    """Check the password, start a session, go where the user was heading."""
    data = await request.form()
    username = str(data.get("username") or "")
    password = str(data.get("password") or "")
    next_path = safe_next(str(data.get("next") or "/"))
    if not same_token(str(data.get(CSRF_FIELD) or ""), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(
            request,
            next_path=next_path,
            error="This login form expired. Please try again.",
            username=username,
            status_code=403,
        )
    address = request.client.host if request.client else "unknown"
    wait = _throttle(request).retry_after(address, username)
    if wait:
        log.info("login throttled address=%s retry_after=%d", address, wait)
        return _too_many(request, next_path, username, wait)
    user = await authenticate(request.app.state.sessions, username, password)
    if user is None:
        wait = _throttle(request).failed(address, username)
        log.info("login failed username_length=%d address=%s", len(username), address)
        if wait:
            return _too_many(request, next_path, username, wait)
        return _login_page(
            request,
            next_path=next_path,
            error="Wrong username or password.",
            username=username,
            status_code=401,
        )
    _throttle(request).succeeded(address, username)
    session_id = await open_session(request.app.state.sessions, user)
    log.info("login user=%s", user.username)
    return Redirect(
        next_path,
        status_code=303,
        cookies=[
            session_cookie(session_id, secure=_secure(request)),
            expired_cookie(LOGIN_CSRF_COOKIE, secure=_secure(request)),
        ],
    )


@post(
    "/logout",
    guards=[session_guard],
    exception_handlers={LoginRequired: login_redirect, CsrfRejected: csrf_rejected},
    include_in_schema=False,
)
async def logout(request: Req) -> Redirect:
    """End the session."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await close_session(request.app.state.sessions, session_id)
    return Redirect(
        "/login", status_code=303, cookies=[expired_cookie(SESSION_COOKIE, secure=_secure(request))]
    )
