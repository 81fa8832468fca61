"""Lines of the checks table as HTML, drawn by plain string joins instead of a Jinja macro.

A page of 1,000 checks called the row macro 1,000 times and escaped ~70 values a row through Jinja's
runtime: ~45 ms of CPU in one worker, during which every short request queued on that worker's event
loop waited. Here each value is escaped once (a name shown three times is escaped once), values from
a fixed vocabulary (states, statuses, region names, ids) are escaped once per process, and a row is one
``str.join``. The markup is the one ``partials/check_row.html`` had; the tests read it as HTML.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache
from typing import Final

from jinja2.filters import do_urlencode
from markupsafe import Markup, escape

from services.api.ui.templating import interval_label
from services.api.ui.views import CheckRow, when


def _text(value: object) -> str:
    """``value`` escaped for HTML text and double-quoted attributes."""
    return str(escape(value))


@lru_cache(maxsize=256)
def _fixed(value: str) -> str:
    """An escaped value from a small vocabulary (state, status, region code or name, method)."""
    return _text(value)


@lru_cache(maxsize=256)
def _interval(seconds: object) -> str:
    return _text(interval_label(seconds))


@lru_cache(maxsize=64)
def _region_chips(regions: tuple[tuple[str, str], ...]) -> str:
    return "".join(f'<span class="chip" title="{_text(code)}">{_text(name)}</span>' for code, name in regions)


def _tags(tags: list[str]) -> str:
    if not tags:
        return ""
    links = "".join(
        f'<a class="chip tag" href="/?tag={_text(do_urlencode(tag))}">{_text(tag)}</a>' for tag in tags
    )
    return f'\n    <div class="tags">{links}</div>'


def _marks(row: CheckRow) -> str:
    if not row.marks:
        return '\n      <span class="muted small">no runs yet</span>'
    parts = []
    for mark in row.marks:
        title = _text(mark.title)
        parts.append(
            f'\n      <a href="/runs/{_text(mark.run_id)}" class="mark mark-{_fixed(mark.status)}" '
            f'title="{title}" aria-label="{title}"></a>'
        )
    return "".join(parts)


def _actions(row: CheckRow, check_id: str, name: str, may_run: bool, may_write: bool) -> str:
    parts = []
    if may_run:
        parts.append(
            f'\n    <button type="button" class="btn small" hx-post="/checks/{check_id}/run" '
            f'hx-target="#run-{check_id}">Run now</button>'
        )
    if may_write:
        toggle = "pause" if row.enabled else "resume"
        parts.append(
            f'\n    <a class="btn small" href="/checks/{check_id}/edit">Edit</a>'
            f'\n    <button type="button" class="btn small" hx-post="/checks/{check_id}/{toggle}" '
            f'hx-target="closest tr" hx-swap="outerHTML">{toggle.capitalize()}</button>'
            f'\n    <button type="button" class="btn small danger" hx-post="/checks/{check_id}/delete"'
            f'\n            hx-confirm="Delete the check “{name}”? This cannot be undone."'
            f'\n            hx-target="closest tr" hx-swap="outerHTML">Delete</button>'
        )
    return "".join(parts)


def row_html(row: CheckRow, may_run: bool, may_write: bool) -> Markup:
    """One ``<tr>`` of the checks table. ``may_run``/``may_write`` show the buttons the viewer may use
    (asked once per table; the routes check again)."""
    check_id = _text(row.id)
    name = _text(row.name)
    incident = (
        f'\n    <span class="badge incident" title="Opened {_text(when(row.incident.opened_at))}">'
        "incident open</span>"
        if row.incident is not None
        else ""
    )
    state = _fixed(row.state)
    return Markup(
        "".join(
            (
                f'<tr id="check-{check_id}" data-check="{name}">\n  <td class="name-cell">\n',
                f'    <a class="check-name" href="/checks/{check_id}">{name}</a>\n',
                f'    <div class="muted small url"><span class="method">{_fixed(row.method)}</span> ',
                _text(row.url),
                "</div>",
                _tags(row.tags),
                f'\n  </td>\n  <td>\n    <span class="badge state-{state}">{state}</span>',
                incident,
                '\n  </td>\n  <td class="marks">',
                _marks(row),
                f'\n  </td>\n  <td class="nowrap">{_interval(row.interval)}</td>\n  <td>',
                _region_chips(tuple(row.regions)),
                '</td>\n  <td class="actions">',
                _actions(row, check_id, name, may_run, may_write),
                f'\n    <div class="run-status small" id="run-{check_id}" aria-live="polite"></div>'
                "\n  </td>\n</tr>\n",
            )
        )
    )


#: Lines kept drawn per process: a 1,000-check page fits several times over, and 4,096 lines of ~2 kB
#: are ~8 MB.
ROW_CACHE_SIZE: Final = 4096


class RowCache:
    """Drawn lines of the checks table by what they are drawn from.

    The key is a line's version (from :func:`services.api.stats.table_versions`: the check's id,
    revision and enabled flag, its newest runs' ids, statuses and times, its open incident) and the
    viewer's two permissions: everything a line shows follows from those (a run's figures never change
    once stored under its id and status). Between two draws of a table most lines are the same — a check every
    minute changes its line once a minute, an hourly one once an hour — so a redraw draws only the lines
    that changed. Lines are kept encoded, as they go into the body (:mod:`services.api.ui.spliced`).
    Bounded: when full, it starts again empty (cheaper than LRU bookkeeping per line, and a full cache
    means the lines in use are far more than one page)"""

    def __init__(self, size: int = ROW_CACHE_SIZE) -> None:
        self.size = size
        self.lines: dict[Hashable, bytes] = {}

    def get(self, key: Hashable) -> bytes | None:
        """The line drawn for ``key`` (UTF-8), if kept."""
        return self.lines.get(key)

    def put(self, key: Hashable, line: bytes) -> None:
        """Keep ``line`` (UTF-8: it goes into a page's body as it is) for ``key``."""
        if len(self.lines) >= self.size:
            self.lines.clear()
        self.lines[key] = line
