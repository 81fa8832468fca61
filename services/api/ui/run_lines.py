"""Lines of runs tables (a check's runs page, its latest runs) as HTML, drawn by string joins.

Each line was a Jinja ``{% include %}``: a new template context per line and every value escaped
through Jinja's runtime, about half of a 50-run page's CPU. Here each line is one ``str.join`` with
each value escaped once; the markup is the one ``partials/run_line.html`` had.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from markupsafe import Markup, escape

from services.api.ui.templating import ms
from services.api.ui.views import RunLine, when


@lru_cache(maxsize=256)
def _fixed(value: str) -> str:
    """An escaped value from a small vocabulary (status, region code or name, error class)."""
    return str(escape(value))


def run_line_html(run: RunLine) -> str:
    """One ``<tr>`` of a runs table."""
    status = _fixed(run.status)
    extra = f' <span class="muted small">HTTP {escape(run.status_code)}</span>' if run.status_code else ""
    if run.error and run.status != "failed":
        extra += f' <span class="muted small">{_fixed(run.error["class"])}</span>'
    count = len(run.assertions)
    assertions = f"{count - run.failed_count}/{count}" if run.assertions else "—"
    completed = when(run.completed_at)
    return (
        f'<tr class="run-line" data-status="{status}">\n'
        f'  <td>{_fixed(run.region_name)} <span class="muted small">{_fixed(run.region)}</span></td>\n'
        f'  <td><span class="badge status-{status}">{status}</span>{extra}</td>\n'
        f'  <td class="right">{escape(ms(run.total_ms))}</td>\n'
        f'  <td class="right">{assertions}</td>\n'
        f'  <td title="{completed}">{completed}</td>\n'
        f'  <td class="right"><a href="/runs/{escape(run.run_id)}">Details</a></td>\n'
        "</tr>\n"
    )


def run_lines(runs: Iterable[RunLine]) -> Markup:
    """Every line of a runs table, as one string (a Jinja filter: ``{{ runs|run_lines }}``)."""
    return Markup("".join([run_line_html(run) for run in runs]))
