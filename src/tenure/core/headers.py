"""Security headers on every response: API, pages, static files and errors alike.

The pages load scripts and styles from /static only and carry no inline script, style
or event handler, so the policy allows nothing else. The interactive API docs (/docs,
/redoc) are FastAPI's pages, which load Swagger UI and ReDoc from a CDN and start them
with an inline script; they get a looser policy of their own, on those paths only.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {_CDN}; "
    f"style-src 'self' 'unsafe-inline' {_CDN} https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def _encoded(csp: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    )


class SecurityHeadersMiddleware:
    """Add the security headers to each response start; Strict-Transport-Security only
    to responses served over HTTPS (behind a proxy, as uvicorn's proxy headers tell)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Built once: a response only concatenates two lists.
        self._headers = {
            (docs, https): [*_encoded(DOCS_POLICY if docs else CONTENT_SECURITY_POLICY)]
            + ([HSTS] if https else [])
            for docs in (False, True)
            for https in (False, True)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._headers[(scope["path"] in DOCS_PATHS, scope.get("scheme") == "https")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
