"""The step editor of the check form: a multi-step check created, shown again and edited through the form."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

from contracts.v1 import CheckDue
from services.api.tests.ui.conftest import Ui, demo_form, opened
from services.common.db.models import Check

BASE = "http://127.0.0.1:9999"


def scenario_form(**changes: Any) -> list[tuple[str, str]]:
    """The demo check as the first step of a scenario: fetch it back, delete it in a teardown."""
    fields = [
        (name, value) for name, value in demo_form(url="{{ vars.base_url }}/api/cards") if name != "name"
    ]
    fields += [
        ("name", changes.get("name", "cards")),
        ("first_step_name", "create"),
        ("first-extract_row", "e1"),
        ("extract-e1-name", "id"),
        ("extract-e1-source", "json_body"),
        ("extract-e1-property", "$.id"),
        ("variables", f"base_url={BASE}"),
        ("secrets", "token=reader-s3cret"),
        ("step_row", "s1"),
        ("step-s1-name", "fetch"),
        ("step-s1-method", "GET"),
        ("step-s1-url", changes.get("fetch_url", "{{ vars.base_url }}/api/cards/{{ steps.create.id }}")),
        ("step-s1-headers", "Accept: application/json\nAuthorization: Bearer {{ secrets.token }}"),
        ("step-s1-assertion_row", "sa1"),
        ("assertion-sa1-source", "status_code"),
        ("assertion-sa1-comparison", "equals"),
        ("assertion-sa1-target", "200"),
        ("step_row", "s2"),
        ("step-s2-name", "delete"),
        ("step-s2-teardown", "on"),
        ("step-s2-method", "DELETE"),
        ("step-s2-url", "{{ vars.base_url }}/api/cards/{{ steps.create.id }}"),
    ]
    return fields


async def test_a_scenario_is_created_through_the_step_editor(ui: Ui) -> None:
    await ui.sign_in()
    response = await ui.post_form("/checks", scenario_form(), follow_redirects=False)
    assert response.status_code == 303, html.unescape(response.text)[-3000:]
    check_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
    async with ui.sessions() as session:
        row = await session.get(Check, check_id)
    assert row is not None
    spec = opened(row.spec)
    assert [step["name"] for step in spec["steps"]] == ["create", "fetch"]
    assert spec["steps"][0]["extract"] == [{"name": "id", "source": "json_body", "property": "$.id"}]
    assert len(spec["steps"][0]["assertions"]) == 7
    assert spec["steps"][1]["request"]["headers"] == {
        "Accept": "application/json",
        "Authorization": "Bearer {{ secrets.token }}",
    }
    assert spec["teardown"][0]["request"]["method"] == "DELETE"
    assert spec["variables"] == {"base_url": BASE}
    assert spec["secrets"]["token"].startswith("sealed:v1:")
    assert spec["request"] == spec["steps"][0]["request"]

    page = await ui.client.get(f"/checks/{check_id}/edit")
    text = html.unescape(page.text)
    assert 'name="first_step_name" value="create"' in text
    assert text.count("data-step-card") == 2
    assert 'name="step-' in text
    assert "{{ vars.base_url }}/api/cards/{{ steps.create.id }}" in text
    assert "reader-s3cret" not in text
    assert "token=********" in text
    posted = re.findall(r'name="(step-[0-9a-f]+-name)" value="([^"]*)"', text)
    assert [value for _, value in posted] == ["fetch", "delete"]


async def test_a_reference_to_no_earlier_step_is_shown_beside_the_form(ui: Ui) -> None:
    await ui.sign_in()
    response = await ui.post_form(
        "/checks", scenario_form(fetch_url="{{ vars.base_url }}/{{ steps.nope.id }}")
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "refers to no earlier step" in text
    assert 'value="fetch"' in text


async def test_removing_every_step_makes_it_a_single_request_check_again(ui: Ui) -> None:
    await ui.sign_in()
    created = await ui.post_form("/checks", scenario_form(), follow_redirects=False)
    check_id = created.headers["location"].rsplit("/", 1)[1]
    single = [(name, value) for name, value in demo_form() if name != "name"] + [("name", "cards")]
    saved = await ui.post_form(f"/checks/{check_id}", single, follow_redirects=False)
    assert saved.status_code == 303, html.unescape(saved.text)[-2000:]
    async with ui.sessions() as session:
        row = await session.get(Check, uuid.UUID(check_id))
    assert row is not None
    assert row.spec["steps"] == []
    assert row.spec["request"]["url"] == "https://api.example.com/api/cards"


async def test_try_it_now_publishes_one_run_of_the_unsaved_form(ui: Ui) -> None:
    await ui.sign_in()
    form = scenario_form()
    form = [(name, value) for name, value in form if name not in ("regions", "timeout")]
    form += [("regions", "eu-north-1"), ("timeout", "1")]
    response = await ui.post_form("/checks/form/try", form, headers={"HX-Request": "true"}, timeout=30)
    assert response.status_code == 200
    dues = [item for item in ui.published.items if isinstance(item, CheckDue)]
    assert len(dues) == 1
    assert dues[0].regions == ["eu-north-1"]
    assert [step.name for step in dues[0].spec.steps] == ["create", "fetch"]
    async with ui.sessions() as session:
        assert await session.get(Check, dues[0].check_id) is None
    assert "did not finish in time" in response.text
