"""An ASGI middleware that rejects request bodies above a size limit before they are parsed."""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def _too_large_message(size: int, max_bytes: int) -> str:
    return (f"the body has at least {size} bytes, more than the limit of {max_bytes} "
            "(serving.max_request_bytes); send fewer candidates or history items")


class RequestTooLarge(HTTPException):
    """Raised while a chunked body is read, once it passes the limit; the app's handler returns 413."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=_too_large_message(size, max_bytes))


class BodySizeLimit:
    """Return 413 for a body longer than ``max_bytes``, by its Content-Length or, for a chunked
    body, as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await self._reject(scope, send, int(declared))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    raise RequestTooLarge(received, self._max_bytes)
            return message

        await self._app(scope, counting_receive, send)

    async def _reject(self, scope: Scope, send: Send, size: int) -> None:
        logger.info("rejected %s %s: body of at least %s bytes, limit %s", scope["method"], scope["path"], size,
                    self._max_bytes)
        body = json.dumps({"error": "request_too_large", "problems": [
            {"field": "body", "message": _too_large_message(size, self._max_bytes)}]}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
