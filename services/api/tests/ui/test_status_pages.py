"""Status pages and badges: built by an admin, seen anonymously, with states, bars and incidents right
and nothing of a check's configuration (URL, headers, assertions, hosts) in what the public gets."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.v1.base import utcnow
from services.api.accounts import create_user
from services.common.db.models import AlertState, Incident, RunRollup
from tests.support.servers import demo_check

from .conftest import TOKEN, Ui

SECRETS = (
    "status-secret.example.net",
    "/internal/cards",
    "Bearer page-s3cret",
    "X-Api-Key",
    "k3y-value",
    "not-demo",
)
REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]


def secret_check(name: str, tags: list[str]) -> dict[str, Any]:
    check = demo_check(
        f"https://status-secret.example.net/internal/cards?n={name}",
        "https://hooks.example.com/x/y",
        name=name,
    )
    check["request"]["headers"].update({"Authorization": "Bearer page-s3cret", "X-Api-Key": "k3y-value"})
    check["assertions"][2]["target"] = "not-demo"
    check["tags"] = tags
    return check


async def api(ui: Ui, method: str, path: str, body: Any = None, token: str = TOKEN) -> Any:
    response = await ui.client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 400, response.text
    return response.json() if response.content else None


async def seed(ui: Ui) -> dict[str, str]:
    """Three checks (cart failing from one region with an open incident), 90 days of rollups."""
    ids = {}
    for name, tags in (("cart", ["shop"]), ("login", ["shop"]), ("search", ["team:search"])):
        ids[name] = (await api(ui, "POST", "/api/v1/checks", secret_check(name, tags)))["id"]
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    async with ui.sessions() as session, session.begin():
        for name, check_id in ids.items():
            for days_ago in (0, 1, 2, 40):
                for region in REGIONS:
                    failing = name == "cart" and region == "eu-north-1" and days_ago in (0, 2)
                    session.add(
                        RunRollup(
                            check_id=uuid.UUID(check_id),
                            region=region,
                            bucket=hour - timedelta(days=days_ago),
                            total=60,
                            responded=60,
                            passed=0 if failing else 60,
                            failed=60 if failing else 0,
                            errors=0,
                            missed=0,
                            sum_ms=60 * 120.0,
                            latency_hist={"150": 60},
                        )
                    )
        session.add(
            Incident(
                check_id=uuid.UUID(ids["cart"]),
                state="open",
                opened_at=now - timedelta(minutes=5),
                failing_regions=[{"region": "eu-north-1"}],
                failing_assertions=[{"source": "json_body", "property": "$.title", "target": "not-demo"}],
            )
        )
        session.add(
            Incident(
                check_id=uuid.UUID(ids["login"]),
                state="resolved",
                opened_at=now - timedelta(days=3),
                resolved_at=now - timedelta(days=3) + timedelta(minutes=20),
                failing_regions=["us-east-1", "eu-north-1", "ca-central-1"],
            )
        )
        session.add(AlertState(check_id=uuid.UUID(ids["search"]), state={"degraded": True}, updated_at=now))
    return ids


def page_body(ids: dict[str, str], *, public: bool = True) -> dict[str, Any]:
    return {
        "title": "Acme status",
        "slug": "acme",
        "logo_text": "ACME",
        "logo_colour": "#ff6600",
        "public": public,
        "groups": [
            {
                "name": "Shop",
                "checks": [
                    {"check_id": ids["cart"], "display_name": "Checkout"},
                    {"check_id": ids["login"], "display_name": "Sign-in"},
                ],
            },
            {"name": "Search", "tag": "team:search"},
        ],
    }


def states(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-check="([^"]+)" data-state="([^"]+)"', html))


async def test_public_page_shows_states_bars_and_incidents_and_nothing_secret(ui: Ui) -> None:
    ids = await seed(ui)
    page = await api(ui, "POST", "/api/v1/status-pages", page_body(ids))
    await api(
        ui,
        "POST",
        f"/api/v1/status-pages/{page['id']}/notices",
        {
            "kind": "incident",
            "title": "Checkout errors in Europe",
            "status": "identified",
            "body": "Fix rolling out.",
        },
    )
    response = await ui.client.get("/status/acme")
    assert response.status_code == 200
    html = response.text
    assert states(html) == {"Checkout": "degraded", "Sign-in": "operational", "search": "degraded"}
    assert "Failing in 1 of 3 regions (Stockholm)" in html
    assert 'data-overall="degraded"' in html
    assert re.findall(r'data-group="([^"]+)"', html) == ["Shop", "Search"]
    checkout = html.split('data-check="Checkout"', 1)[1].split('data-check="Sign-in"', 1)[0]
    bars = re.findall(r'class="bar bar-(\w+)"', checkout)
    assert len(bars) == 90
    assert bars[-1] == "major"
    assert bars[-3] == "major"
    assert bars[-2] == "ok"
    assert bars[-41] == "ok"
    assert bars[0] == "none"
    assert "66.67 % (120 of 180 runs passed)" in checkout
    assert "<polyline" in checkout
    assert "Checkout errors in Europe" in html
    assert "Identified" in html
    open_incidents = html.split("Open incidents", 1)[1].split("</section>", 1)[0]
    assert "Checkout" in open_incidents
    assert "Stockholm" in open_incidents
    history = html.split("Recent history", 1)[1]
    assert "Sign-in" in history
    assert "resolved" in history
    for secret in (*SECRETS, "cart", "login", "127.0.0.1", "runner-", "hooks.example.com"):
        assert secret not in html, secret
    assert "<script" not in html.replace(
        '<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>', ""
    )


async def test_private_page_is_not_public_but_admins_can_preview(ui: Ui) -> None:
    ids = await seed(ui)
    page = await api(ui, "POST", "/api/v1/status-pages", page_body(ids, public=False))
    hidden = await ui.client.get("/status/acme")
    assert hidden.status_code == 404
    assert "No such status page" in hidden.text
    assert "Checkout" not in hidden.text
    assert (await ui.client.get("/status/nope")).status_code == 404
    await ui.sign_in()
    preview = await ui.client.get(f"/status-pages/{page['id']}/preview")
    assert preview.status_code == 200
    assert 'data-check="Checkout"' in preview.text


async def test_page_is_served_from_a_short_cache_with_etags(ui: Ui) -> None:
    ids = await seed(ui)
    await api(ui, "POST", "/api/v1/status-pages", page_body(ids))
    first = await ui.client.get("/status/acme")
    assert "max-age=" in first.headers["cache-control"]
    assert first.headers["vary"] == "HX-Request, Accept-Encoding"
    assert first.headers["content-encoding"] == "gzip"
    plain = await ui.client.get("/status/acme", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == first.text
    body = await ui.client.get("/status/acme", headers={"HX-Request": "true"})
    assert body.text.startswith('<div id="status-body"')
    assert "<html" not in body.text
    async with ui.sessions() as session, session.begin():
        incident = (
            await session.execute(Incident.__table__.select().where(Incident.state == "open"))
        ).first()
        assert incident is not None
        await session.execute(
            Incident.__table__.update()
            .where(Incident.id == incident.id)
            .values(state="resolved", resolved_at=utcnow())
        )
    cached = await ui.client.get("/status/acme")
    assert states(cached.text)["Checkout"] == "degraded"
    again = await ui.client.get("/status/acme", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    ui.client.app.state.status_cache.fresh_s = 0.0
    fresh = await ui.client.get("/status/acme")
    assert states(fresh.text)["Checkout"] == "operational"


INVALID = [
    ({"slug": "Has Space"}, "slug"),
    ({"groups": []}, "groups"),
    ({"groups": [{"name": "empty"}]}, "groups.0"),
    (
        {"groups": [{"name": "x", "checks": [{"check_id": str(uuid.uuid4()), "display_name": "ghost"}]}]},
        "groups.0.checks.0.check_id",
    ),
    ({"logo_colour": "orange"}, "logo_colour"),
    ({"title": ""}, "title"),
]


@pytest.mark.parametrize(
    ("change", "field"), INVALID, ids=["slug", "no-groups", "empty-group", "unknown-check", "colour", "title"]
)
async def test_invalid_page_is_422_naming_the_field(ui: Ui, change: dict[str, Any], field: str) -> None:
    ids = await seed(ui)
    response = await ui.client.post(
        "/api/v1/status-pages",
        json={**page_body(ids), **change},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 422, response.text
    assert any(error["field"].startswith(field) for error in response.json()["errors"])


async def test_admin_builds_a_page_in_the_ui_and_posts_maintenance(ui: Ui) -> None:
    await seed(ui)
    await ui.sign_in()
    assert "Status pages" in (await ui.client.get("/")).text
    form = [
        ("title", "Acme status"),
        ("slug", "acme"),
        ("logo_text", "ACME"),
        ("logo_colour", "#ff6600"),
        ("public", "on"),
        ("group_row", "g1"),
        ("group-g1-name", "Shop"),
        ("group-g1-tag", ""),
        ("group-g1-checks", "cart = Checkout\nlogin"),
        ("group_row", "g2"),
        ("group-g2-name", "Search"),
        ("group-g2-tag", "team:search"),
        ("group-g2-checks", ""),
        ("group_row", "g3"),
        ("group-g3-name", ""),
        ("group-g3-tag", ""),
        ("group-g3-checks", ""),
    ]
    bad = await ui.post_form(
        "/status-pages", [*form[:6], ("group-g1-name", "Shop"), ("group-g1-checks", "nope")]
    )
    assert bad.status_code == 422
    assert "no check named &#39;nope&#39;" in bad.text
    saved = await ui.post_form("/status-pages", form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    edit = await ui.client.get(saved.headers["location"])
    assert "cart = Checkout" in edit.text
    page_id = saved.headers["location"].split("/")[2]
    start = (utcnow() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    end = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    posted = await ui.post_form(
        f"/status-pages/{page_id}/notices",
        {
            "kind": "maintenance",
            "status": "in_progress",
            "title": "Database upgrade",
            "body": "",
            "starts_at": start,
            "ends_at": end,
        },
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    public = await ui.client.get("/status/acme")
    assert "Scheduled maintenance: Database upgrade" in public.text
    assert states(public.text) == {"Checkout": "degraded", "login": "operational", "search": "degraded"}
    listing = await ui.client.get("/status-pages")
    assert 'href="/status/acme"' in listing.text


async def test_only_admins_manage_status_pages(ui: Ui) -> None:
    await create_user(ui.sessions, "viewer", "viewer password 1")
    await ui.sign_in("viewer")
    assert (await ui.client.get("/status-pages")).status_code == 403
    denied = await ui.post_form("/status-pages", [("title", "x")])
    assert denied.status_code == 403


async def test_badges_by_unguessable_token_expose_nothing_else(ui: Ui) -> None:
    ids = await seed(ui)
    urls = await api(ui, "GET", f"/api/v1/checks/{ids['cart']}/badges")
    token = urls["token"]
    assert len(token) >= 32
    expected = {
        "status": "degraded",
        "uptime-24h": "83.33%",
        "uptime-7d": "77.78%",
        "uptime-30d": "77.78%",
        "p95": "148 ms",
    }
    for kind, message in expected.items():
        response = await ui.client.get(urls["urls"][kind])
        assert response.status_code == 200, kind
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert f": {message}</title>" in response.text, (kind, response.text)
        for secret in (*SECRETS, "cart"):
            assert secret not in response.text
    assert (await ui.client.get("/badge/not-a-token/status.svg")).status_code == 404
    assert (await ui.client.get(f"/badge/{token}/secrets.svg")).status_code == 404
    rotated = await api(ui, "POST", f"/api/v1/checks/{ids['cart']}/badges/rotate")
    assert rotated["token"] != token
    assert (await ui.client.get(urls["urls"]["status"])).status_code == 404
    assert (await ui.client.get(rotated["urls"]["status"])).status_code == 200

    await api(ui, "POST", "/api/v1/status-pages", page_body(ids))
    page_badge = await ui.client.get("/status/acme/badge.svg")
    assert "status: degraded" in page_badge.text


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_status_page_api_needs_an_admin(ui: Ui, role: str) -> None:
    from services.api.auth import create_token

    user = await create_user(ui.sessions, f"u-{role}", "a long password 1", role=role)
    _, token = await create_token(ui.sessions, "t", user.id)
    response = await ui.client.get("/api/v1/status-pages", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


async def test_check_page_makes_and_rotates_badge_links(ui: Ui) -> None:
    ids = await seed(ui)
    await ui.sign_in()
    page = await ui.client.get(f"/checks/{ids['cart']}")
    assert "Make badge links" in page.text
    made = await ui.post_form(f"/checks/{ids['cart']}/badges", {}, follow_redirects=False)
    assert made.status_code == 303
    page = await ui.client.get(f"/checks/{ids['cart']}")
    first = re.search(r"/badge/([\w-]+)/status\.svg", page.text)
    assert first is not None
    assert (await ui.client.get(first.group(0))).status_code == 200
    await ui.post_form(f"/checks/{ids['cart']}/badges", {"rotate": "on"}, follow_redirects=False)
    page = await ui.client.get(f"/checks/{ids['cart']}")
    second = re.search(r"/badge/([\w-]+)/status\.svg", page.text)
    assert second is not None
    assert second.group(1) != first.group(1)
    assert (await ui.client.get(first.group(0))).status_code == 404


async def test_maintenance_in_progress_shows_on_an_otherwise_quiet_page(ui: Ui) -> None:
    ids = await seed(ui)
    body = {
        **page_body(ids),
        "groups": [{"name": "Shop", "checks": [{"check_id": ids["login"], "display_name": "Sign-in"}]}],
    }
    page = await api(ui, "POST", "/api/v1/status-pages", body)
    assert 'data-overall="operational"' in (await ui.client.get("/status/acme")).text
    window = {
        "starts_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "ends_at": (utcnow() + timedelta(hours=1)).isoformat(),
    }
    notice = {"kind": "maintenance", "title": "DB upgrade", "status": "in_progress", **window}
    await api(ui, "POST", f"/api/v1/status-pages/{page['id']}/notices", notice)
    html = (await ui.client.get("/status/acme")).text
    assert 'data-overall="maintenance"' in html
    assert "Scheduled maintenance: DB upgrade" in html
    await api(ui, "POST", f"/api/v1/status-pages/{page['id']}/notices", {**notice, "status": "completed"})
    html = (await ui.client.get("/status/acme")).text
    assert 'data-overall="operational"' in html
    assert "Scheduled maintenance: DB upgrade" not in html
    assert "DB upgrade" in html.split("Recent history", 1)[1]
