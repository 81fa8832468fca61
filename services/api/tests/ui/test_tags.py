"""Tags in the UI: typed in the form, shown in the table, a filter, and pause/resume of a whole tag."""

from __future__ import annotations

import html
import uuid

import pytest

from services.common.db.models import Check

from .conftest import Ui, demo_form


async def create(ui: Ui, name: str, tags: str) -> uuid.UUID:
    response = await ui.post_form("/checks", [*demo_form(name=name), ("tags", tags)], follow_redirects=False)
    assert response.status_code == 303, response.text
    return uuid.UUID(response.headers["location"].rsplit("/", 1)[1])


async def test_tags_from_the_form_filter_the_table_and_pause_resume_a_tag(ui: Ui) -> None:
    await ui.sign_in()
    cart = await create(ui, "cart", "team:payments, deploy-smoke")
    await create(ui, "search", "team:search")
    async with ui.sessions() as session:
        row = await session.get(Check, cart)
    assert row is not None
    assert row.spec["tags"] == ["team:payments", "deploy-smoke"]

    edit = await ui.client.get(f"/checks/{cart}/edit")
    assert 'value="team:payments, deploy-smoke"' in edit.text

    home = await ui.client.get("/")
    assert "deploy-smoke (1)" in home.text
    assert 'href="/?tag=team%3Apayments"' in home.text
    filtered = await ui.client.get("/", params={"tag": "deploy-smoke"})
    assert 'data-check="cart"' in filtered.text
    assert 'data-check="search"' not in filtered.text
    assert "Pause all tagged deploy-smoke" in filtered.text
    partial = await ui.client.get("/partials/checks", params={"tag": "team:search"})
    assert 'data-check="search"' in partial.text
    assert 'data-check="cart"' not in partial.text

    paused = await ui.post_form("/checks/tagged/pause", {"tag": "deploy-smoke"}, follow_redirects=False)
    assert paused.status_code == 303
    assert paused.headers["location"] == "/?tag=deploy-smoke"
    async with ui.sessions() as session:
        states = {c.name: c.enabled for c in (await session.execute(Check.__table__.select())).all()}
    assert states == {"cart": False, "search": True}
    resumed = await ui.post_form("/checks/tagged/resume", {"tag": "deploy-smoke"}, follow_redirects=False)
    assert resumed.status_code == 303
    async with ui.sessions() as session:
        assert (await session.get(Check, cart)).enabled is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("typed", "stored"), [("a b,c", ["a", "b", "c"]), ("x, x", ["x"])], ids=["split", "dedup"]
)
async def test_tags_field_is_split_on_commas_and_spaces(ui: Ui, typed: str, stored: list[str]) -> None:
    await ui.sign_in()
    check_id = await create(ui, "t", typed)
    async with ui.sessions() as session:
        row = await session.get(Check, check_id)
    assert row is not None
    assert row.spec["tags"] == stored


async def test_a_bad_tag_is_shown_beside_the_tags_field(ui: Ui) -> None:
    await ui.sign_in()
    response = await ui.post_form("/checks", [*demo_form(), ("tags", "ok, bad/tag")])
    assert response.status_code == 422
    text = html.unescape(response.text)
    tags_field = text.split('name="tags"', 1)[1].split("</label>", 1)[0]
    assert "tag 'bad/tag' must be" in tags_field
