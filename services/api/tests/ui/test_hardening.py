"""Browser-facing hardening: no framing (CSP frame-ancestors), Secure cookies over HTTPS, a new token's
page is never cached, and the API schema needs a token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from services.api.app import create_app
from services.common.settings import Settings

from .conftest import PASSWORD, TOKEN, Published, Ui

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.parametrize("path", ["/login", "/healthz", "/api/v1/checks", "/", "/static/seymour.js"])
async def test_every_answer_forbids_framing(ui: Ui, path: str) -> None:
    await ui.sign_in()
    response = await ui.client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_no_template_has_inline_script_the_csp_would_block() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {template.name}"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {template.name}"


@pytest.mark.parametrize(
    ("base_url", "settings", "secure"),
    [
        ("http://testserver.local", {}, False),
        ("https://testserver.local", {}, True),
        ("http://testserver.local", {"base_url": "https://seymour.example.com"}, True),
        ("http://testserver.local", {"secure_cookies": True}, True),
    ],
    ids=["plain-http", "served-over-https", "behind-a-tls-proxy", "asked-for"],
)
async def test_cookies_are_secure_when_the_site_is_https(
    ui: Ui, base_url: str, settings: dict[str, object], secure: bool
) -> None:
    app = create_app(Settings(api_token=TOKEN, **settings), sessions=ui.sessions, bus=Published())
    async with AsyncTestClient(app=app, base_url=base_url) as client:
        page = await client.get("/login")
        form_cookie = page.headers["set-cookie"]
        assert ("Secure" in form_cookie) is secure
        if base_url.startswith("https://"):
            token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
            assert token is not None
            response = await client.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "_csrf": token.group(1), "next": "/"},
                follow_redirects=False,
            )
            assert response.status_code == 303
            cookies = response.headers.get_list("set-cookie")
            session = next(value for value in cookies if "seymour_session=" in value)
            assert "Secure" in session
            assert "HttpOnly" in session


async def test_the_page_and_answer_that_show_a_new_token_are_never_cached(ui: Ui) -> None:
    await ui.sign_in()
    page = await ui.post_form("/settings/tokens", {"name": "ci"})
    assert "sey_" in page.text
    assert page.headers["cache-control"] == "no-store"
    api = await ui.client.post(
        "/api/v1/tokens", json={"name": "ci"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert api.status_code == 201
    assert api.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/schema/openapi.json", "/schema/asyncapi.json", "/schema"])
async def test_the_api_schema_needs_a_token(ui: Ui, path: str) -> None:
    anonymous = await ui.client.get(path)
    assert anonymous.status_code == 401
    allowed = await ui.client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200
