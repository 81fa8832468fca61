"""A page whose long middle is already-encoded bytes: the template is drawn around a marker, and the
drawn lines go in its place as bytes.

The checks table at ``per_page=1000`` is ~2 MB of lines that are drawn once and then kept
(:class:`services.api.ui.check_rows.RowCache`). Handing them to Jinja as one ``Markup`` string cost
three copies of those 2 MB per request (the join into one string, Jinja's concatenation of the page,
the encoding to UTF-8 — a name with one non-ASCII letter makes the whole page a wide string and the
encoding slow): ~20 ms of CPU on a 1,000-line page, while every other request on that worker's event
loop waited. Kept as UTF-8 bytes, the lines are copied once, into the body.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, Final

from litestar import Request
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response import Template
from litestar.response.base import ASGIResponse
from markupsafe import Markup

#: What the template draws where the lines go. An HTML comment, so a template that showed it by mistake
#: would still be valid HTML; the lines themselves are escaped, so no line can contain it.
MARK: Final = "<!--seymour:spliced-lines-->"


class SplicedTemplate(Template):
    """A template response with ``lines`` (UTF-8 bytes) put where the template draws :data:`MARK`.

    The context gets ``spliced`` set to ``Markup(MARK)`` when there are lines and to an empty
    ``Markup`` otherwise, so a template can test it for an empty state."""

    def __init__(self, *, lines: list[bytes], context: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(context={**context, "spliced": Markup(MARK if lines else "")}, **kwargs)
        self.lines = lines

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIResponse:
        engine = request.app.template_engine
        if engine is None or self.template_name is None:
            raise ImproperlyConfiguredException("a spliced template needs a template engine and a name")
        drawn = engine.get_template(self.template_name).render(**self.create_template_context(request))
        head, marked, tail = drawn.partition(MARK)
        parts = [head.encode(self.encoding)]
        if marked:
            parts.extend(self.lines)
            parts.append(tail.encode(self.encoding))
        return ASGIResponse(
            background=self.background or background,
            body=b"".join(parts),
            content_length=None,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            media_type=self.media_type or media_type or MediaType.HTML,
            status_code=self.status_code or status_code,
        )
