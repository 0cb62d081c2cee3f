"""ASGI middleware: request body limits and security headers on every answer."""

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
_CSP = b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


# int() refuses decimal strings over 4300 digits; no body or file this server takes needs more than 18.
_MAX_DIGITS = 18


def header_number(value: str | bytes | None) -> int | None:
    """A header of ASCII digits (Content-Length, Upload-Offset...) as a number, None if it is not one
    (see :func:`decimal`)."""
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return decimal(value.decode() if isinstance(value, bytes) else value)


def decimal(digits: str) -> int:
    """ASCII digits as a number; more than 18 of them, leading zeros aside, read as 10**18: more than
    any length or offset we accept."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


class BodyLimit:
    """413 for bodies over ``limit`` bytes, whether announced by Content-Length or streamed.
    Paths under ``exempt`` or matching ``exempt_pattern`` (uploads) enforce their own limits."""

    def __init__(
        self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = (), exempt_pattern: str | None = None
    ) -> None:
        self.app, self.limit, self.exempt = app, limit, exempt
        self.exempt_pattern = re.compile(exempt_pattern) if exempt_pattern else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].startswith(self.exempt)
            or (self.exempt_pattern is not None and self.exempt_pattern.fullmatch(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        length = header_number(declared)
        if declared is not None and (length is None or length > self.limit):
            await self._too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException passes through FastAPI's body parsing untouched.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.limit} bytes."

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(error_body("payload_too_large", self._message())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope["path"] in ("/docs", "/redoc") or scope["path"].startswith("/docs/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                # /docs loads Swagger UI from a CDN and inline script: it keeps FastAPI's defaults.
                if not is_docs and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", _CSP))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
