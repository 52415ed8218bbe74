"""What every payments response carries and every request body must first pass.

An ASGI middleware in front of the pages, because FastAPI reads a route's form
body (a whole upload, spooled to disk) before it runs the route's dependencies,
:func:`payments.ui.guard.guard` included:

- a request with a body is authenticated first, from its headers alone (the
  bearer token or the UI's session cookie, as Airflow's API server reads
  them), and must say its length, no more than a report may weigh; otherwise
  it is answered (401, 403, 411, 413) without a byte of its body being read;
- every response forbids framing by another site (``frame-ancestors 'self'``,
  ``X-Frame-Options: SAMEORIGIN``): the pages still show inside Airflow's own
  frame, never inside a page that could have "Confirm" clicked unseen.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FRAMING = [
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-frame-options", b"SAMEORIGIN"),
]
#: Room for a multipart envelope around the largest report a bank may send.
ENVELOPE = 64 * 1024
#: Airflow's session cookie (``airflow.api_fastapi.auth.managers.base_auth_manager``).
COOKIE = "_token"


class Gate:
    """The middleware: framing headers on every answer; a body only from a known user."""

    def __init__(self, app: ASGIApp, max_body: int | None = None) -> None:
        self.app = app
        self._max_body = max_body

    @property
    def max_body(self) -> int:
        if self._max_body is None:
            from payments.registry import load_registry

            self._max_body = int(load_registry().report_max_bytes) + ENVELOPE
        return self._max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def framed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *FRAMING]
            await send(message)

        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            refusal = await self._refusal(scope)
            if refusal is not None:
                await _answer(framed, *refusal)
                return
        await self.app(scope, receive, framed)

    async def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why a request with a body is answered before it is read (None: let it in)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = _token(headers)
        if not token:
            return 401, "Not authenticated"
        from airflow.api_fastapi.core_api.security import resolve_user_from_token
        from fastapi import HTTPException

        try:
            await resolve_user_from_token(token)
        except HTTPException as exc:
            return exc.status_code, str(exc.detail)
        length = headers.get("content-length", "")
        if not length.isdigit():
            return 411, "say the body's length (Content-Length)"
        if int(length) > self.max_body:
            return 413, f"{int(length):,} bytes, over the {self.max_body:,} a request may have"
        return None


def _token(headers: dict[str, str]) -> str:
    """The bearer token, else the session cookie's (an explicit credential wins)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no credential
        return ""
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel else ""


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
