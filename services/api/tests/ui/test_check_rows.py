"""Lines of the checks table drawn without Jinja, and kept drawn by version: every user-typed value
escaped wherever it appears, and a redraw showing whatever changed (and only the viewer's buttons)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import unquote

from contracts.v1.base import utcnow
from services.api.accounts import create_user, open_session
from services.api.stats import RunMark, TableCheck
from services.api.ui.check_rows import RowCache, row_html
from services.api.ui.run_lines import run_lines
from services.api.ui.security import SESSION_COOKIE
from services.api.ui.views import RunLine, check_row

from .conftest import PASSWORD, Ui, demo_form, run_row, store_runs

HOSTILE = "\"><script>alert('x')</script>&amp;"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of the document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(markup: str) -> Elements:
    elements = Elements()
    elements.feed(markup)
    elements.close()
    return elements


def test_every_typed_value_comes_back_as_typed_and_no_tag_is_injected() -> None:
    check_id = uuid.uuid4()
    row = TableCheck(
        check_id,
        HOSTILE,
        True,
        3,
        {
            "request": {"method": "GET", "url": f"https://api.example.com/{HOSTILE}"},
            "interval": 60,
            "regions": ["us-east-1"],
            "tags": [HOSTILE],
        },
    )
    mark = RunMark(uuid.uuid4(), check_id, "us-east-1", "error", 12.0, 503, utcnow(), 0, 1, HOSTILE)
    markup = str(row_html(check_row(row, [mark], None), True, True))
    elements = parsed(markup)
    assert "script" not in [tag for tag, _ in elements.tags]
    attrs = {tag: found for tag, found in elements.tags if tag == "tr"}
    assert attrs["tr"]["data-check"] == HOSTILE
    links = [found for tag, found in elements.tags if tag == "a"]
    assert {"class": "check-name", "href": f"/checks/{check_id}"} in links
    tag_link = next(link["href"] or "" for link in links if link.get("class") == "chip tag")
    assert unquote(tag_link.removeprefix("/?tag=")) == HOSTILE
    assert "<" not in tag_link
    confirm = next(found["hx-confirm"] for tag, found in elements.tags if "hx-confirm" in found)
    assert confirm == f"Delete the check “{HOSTILE}”? This cannot be undone."
    text = "".join(elements.text)
    assert text.count(HOSTILE) >= 3  # the name, the URL and the tag, as typed
    assert text.count("<script>") == 3  # and nothing else
    title = next(
        found["title"] for tag, found in elements.tags if (found.get("class") or "").startswith("mark ")
    )
    assert title is not None
    assert title == f"N. Virginia · error · HTTP 503 · 12 ms · {HOSTILE}"


def test_buttons_follow_the_viewers_permissions() -> None:
    row = TableCheck(uuid.uuid4(), "quiet", False, 1, {"request": {}, "regions": [], "tags": []})
    line = check_row(row, [], None)
    everything = str(row_html(line, True, True))
    assert "Run now" in everything
    assert "Resume" in everything
    assert "Delete" in everything
    assert "Pause" not in everything
    assert "no runs yet" in everything
    nothing = str(row_html(line, False, False))
    assert "Run now" not in nothing
    assert "Edit" not in nothing
    assert "Delete" not in nothing


def test_a_full_cache_starts_again_empty() -> None:
    cache = RowCache(size=2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    cache.put("c", b"3")
    assert cache.get("a") is None
    assert cache.get("b") is None
    assert cache.get("c") == b"3"


async def test_a_redraw_shows_what_changed_and_the_viewers_own_buttons(ui: Ui) -> None:
    await ui.sign_in()
    created = await ui.post_form("/checks", demo_form(name="first-name"), follow_redirects=False)
    check_id = uuid.UUID(created.headers["location"].rsplit("/", 1)[1])
    first = await ui.client.get("/partials/checks", headers={"HX-Request": "true"})
    assert 'data-check="first-name"' in first.text
    assert "no runs yet" in first.text

    now = utcnow()
    await store_runs(
        ui.sessions, [run_row(check_id, "us-east-1", now - timedelta(seconds=5), status="failed")]
    )
    with_run = await ui.client.get("/partials/checks", headers={"HX-Request": "true"})
    assert "mark-failed" in with_run.text
    assert "no runs yet" not in with_run.text

    renamed = await ui.post_form(f"/checks/{check_id}", demo_form(name="second-name"), follow_redirects=False)
    assert renamed.status_code == 303, renamed.text
    after = await ui.client.get("/partials/checks", headers={"HX-Request": "true"})
    assert 'data-check="second-name"' in after.text
    assert "first-name" not in after.text
    assert "mark-failed" in after.text

    paused = await ui.client.post(
        f"/checks/{check_id}/pause", headers={"HX-Request": "true", "X-CSRF-Token": ui.csrf}
    )
    assert paused.status_code == 200
    assert "state-paused" in paused.text
    assert "Resume" in paused.text
    assert "state-paused" in (await ui.client.get("/partials/checks", headers={"HX-Request": "true"})).text

    viewer = await create_user(ui.sessions, "viewer", PASSWORD, role="viewer")
    ui.client.cookies.set(SESSION_COOKIE, await open_session(ui.sessions, viewer))
    seen = await ui.client.get("/partials/checks", headers={"HX-Request": "true"})
    assert 'data-check="second-name"' in seen.text
    assert "Run now" not in seen.text
    assert f"/checks/{check_id}/edit" not in seen.text


def test_run_lines_escape_what_a_run_reports_and_show_its_figures() -> None:
    run = RunLine(
        uuid.uuid4(),
        "us-east-1",
        "error",
        None,
        {"class": HOSTILE, "message": ""},
        1234.5,
        [{}, {}],
        1,
        utcnow(),
    )
    elements = parsed(str(run_lines([run])))
    assert "script" not in [tag for tag, _ in elements.tags]
    text = "".join(elements.text)
    assert HOSTILE in text
    assert "1.23 s" in text
    assert "1/2" in text
    assert {"href": f"/runs/{run.run_id}"} in [found for tag, found in elements.tags if tag == "a"]


async def test_kept_lines_go_into_the_page_whole_whatever_their_text(ui: Ui) -> None:
    """Lines go into the body as kept bytes: non-ASCII names, a name spelling the splice mark, the
    length header and the empty table all come out as drawn."""
    await ui.sign_in()
    empty = await ui.client.get("/partials/checks", headers={"HX-Request": "true"})
    assert "No checks yet" in empty.text
    names = ["café “quoted” 東京", "<!--seymour:spliced-lines-->", "plain"]
    for name in names:
        created = await ui.post_form("/checks", demo_form(name=name), follow_redirects=False)
        assert created.status_code == 303, created.text
    seen: dict[str, list[str]] = {}
    for path in ("/", "/partials/checks", "/?per_page=2", "/?per_page=2&page=2"):
        headers = {"HX-Request": "true"} if "partials" in path else {}
        first = await ui.client.get(path, headers=headers)
        again = await ui.client.get(path, headers=headers)
        assert first.content == again.content  # the second one is all kept lines
        assert int(first.headers["content-length"]) == len(first.content)
        assert first.headers["content-type"].startswith("text/html")
        assert "No checks yet" not in first.text
        assert "<!--seymour:spliced-lines-->" not in first.text
        seen[path] = [
            attrs["data-check"] or ""
            for tag, attrs in parsed(first.text).tags
            if tag == "tr" and "data-check" in attrs
        ]
    assert sorted(seen["/"]) == sorted(names)
    assert seen["/partials/checks"] == seen["/"]
    assert seen["/?per_page=2"] + seen["/?per_page=2&page=2"] == seen["/"]
    assert (await ui.client.get("/")).text.rstrip().endswith("</html>")
