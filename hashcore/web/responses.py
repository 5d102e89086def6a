"""How the dashboard answers every request: errors as JSON, its security headers, JSON without NaN.

A handler refuses a request by raising :class:`Refused`; the middleware made by
:func:`error_middleware` answers that, aiohttp's own 404 and 405, a request addressed to
another name (:class:`hashcore.listen.HostRule`), a body over the size cap and any fault
as ``{"error": ..., "status": ...}`` (:func:`hashcore.listen.json_refusal`), never a
traceback. :func:`security_headers` keeps the page to this server alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from hashcore.errors import HashcoreError
from hashcore.listen import json_refusal

log = logging.getLogger("hashcore.web")

#: The page may load and connect to this server only: no CDN, no font, no beacon.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Refused(Exception):
    """A request answered with an error status and a JSON message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def json_text(data: Any) -> str:
    """Compact JSON; NaN and infinity are an error (the snapshot has made them null)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def error_middleware(refusal: Callable[[web.Request], tuple[int, str] | None], max_body: int) -> Middleware:
    """The middleware that checks a request's ``Host`` (``refusal`` says why it is
    refused) and its announced size, and answers every error as JSON."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            # No Host at all (HTTP/1.0) is not a browser, so not a rebound name either.
            refused = refusal(request)
            if refused is not None:
                raise Refused(*refused)
            if request.content_length is not None and request.content_length > max_body:
                raise Refused(413, f"request body too large: {request.content_length} bytes, at most {max_body}")
            return await handler(request)
        except Refused as exc:
            return json_refusal(exc.status, exc.message, exc.headers)
        except web.HTTPRequestEntityTooLarge:
            return json_refusal(413, f"request body too large: at most {max_body} bytes")
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return json_refusal(405, f"{request.method} is not allowed on {request.path}; use {allowed}",
                                {"Allow": allowed})
        except web.HTTPNotFound:
            return json_refusal(404, f"nothing at {request.path}")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return json_refusal(exc.status, exc.reason)
        except ConnectionResetError:
            raise
        except HashcoreError as exc:
            return json_refusal(400, str(exc))
        except Exception:
            log.exception("dashboard request %s %s failed", request.method, request.path)
            return json_refusal(500, "internal error; the miner's log has the details")

    return errors


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The headers every answer carries (an ``on_response_prepare`` signal)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store" if request.path.startswith("/api/") else "no-cache")
