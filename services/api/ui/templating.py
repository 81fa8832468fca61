"""Jinja set-up for the UI: autoescaping on, plus the few filters the templates format values with."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Final

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from contracts.v1.base import utcnow
from contracts.v1.regions import display_name
from services.api.permissions import has
from services.api.ui import form
from services.api.ui.views import mark_title, observed_text, when

TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"
STATIC: Final = Path(__file__).resolve().parent.parent / "static"


def ms(value: Any) -> str:
    """Milliseconds for people: ``87 ms``, ``1.24 s``, ``—`` when unknown."""
    if value is None:
        return "—"
    value = float(value)
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def pct(value: Any) -> str:
    """A percentage with two decimals, ``—`` when there is nothing to divide."""
    return "—" if value is None else f"{float(value):.2f} %"


def interval_label(seconds: Any) -> str:
    """``60`` → ``1 minute``; an unusual interval as ``every 90 s``."""
    labels = dict(form.INTERVALS)
    seconds = int(seconds)
    if seconds in labels:
        return labels[seconds]
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def ago(value: datetime | None) -> str:
    """How long ago, coarsely: ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    if value is None:
        return "never"
    seconds = max(0, int((utcnow() - value).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _configure(engine: JinjaTemplateEngine) -> None:
    from services.api.ui.run_lines import run_lines  # (it formats with this module's filters)

    env = engine.engine
    # Templates ship with the package and never change under a running server; without this Jinja
    # stats the file of every {% include %} — a thousand times on a 1,000-check page.
    env.auto_reload = False
    env.trim_blocks = True
    env.lstrip_blocks = True
    # ``{% if request is allowed_to('write') %}``: show a control only to whoever may use it (the routes
    # check again; this only spares viewers buttons that would answer 403).
    env.tests["allowed_to"] = lambda request, permission: has(request, permission)
    env.filters.update(
        {
            "ms": ms,
            "pct": pct,
            "when": when,
            "ago": ago,
            "interval_label": interval_label,
            "region_name": display_name,
            "mark_title": mark_title,
            "run_lines": run_lines,
            "observed": observed_text,
            "comparison_label": lambda name: form.COMPARISON_LABELS.get(name, name),
            "source_label": lambda name: form.SOURCES.get(name, name),
        }
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The UI's template configuration (templates/pages and templates/partials)."""
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure)
