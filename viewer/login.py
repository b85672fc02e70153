"""Before login, the server tells nothing about the runs.

With ``--auth`` Gradio answers its API routes with 401 until someone logs in, but the login page it
serves at ``/`` still embeds the app's API description, whose parameters list the run names (the
run picker's choices). :class:`LoginPageGuard` wraps the app and empties that description in the
login page; pages served after login keep it. Whether a page is the login page is Gradio's own
decision, read from the page it rendered (its config asks for a login), so the guard never has to
know who is logged in.
"""

from __future__ import annotations

import re

# Gradio's index.html: the page's config, then the API description, each in its own script tag.
LOGIN_CONFIG = re.compile(rb'<script>window\.gradio_config = \{"auth_required":\s*true[,}]')
API_INFO = re.compile(rb"(<script>window\.gradio_api_info = ).*?(;</script>)", re.S)
NO_API_INFO = rb'\1{"named_endpoints":{},"unnamed_endpoints":{}}\2'


def without_api_info(page: bytes) -> bytes:
    """``page`` with an empty API description when it is Gradio's login page; otherwise unchanged."""
    if not LOGIN_CONFIG.search(page):
        return page
    return API_INFO.sub(NO_API_INFO, page, count=1)


class LoginPageGuard:
    """ASGI middleware: HTML pages pass through :func:`without_api_info`; everything else streams
    through untouched (event streams included)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def hold(message):
            nonlocal start
            if start is None and message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"text/html"):
                    start = message  # an HTML page: held until its body is complete
                    return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = without_api_info(b"".join(body))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": headers + [(b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, hold)
