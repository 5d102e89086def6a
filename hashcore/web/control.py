"""The dashboard's control requests: pause, resume, a power target, a pool switch.

``POST /api/control/pause``, ``/resume``, ``/target`` (``{"watts": W|null}``) and
``/pool`` (``{"index": i}``). Each is refused (403) unless control was allowed, and then
needs the token (401 without it) in ``Authorization: Bearer`` or ``X-Hashcore-Token``: a
header, which a cross-site form or image cannot send. A body is JSON parsed with a bound
on nesting and without duplicate keys, and must arrive within :data:`BODY_SECONDS`. The
answer to a request carried out is ``{"ok": true, "message": ..., "stats": <snapshot>}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from hashcore import boundedjson
from hashcore.control import MinerControl, ThrottleControl, power_target
from hashcore.errors import ConfigError, HashcoreError
from hashcore.web.responses import Refused, json_text

log = logging.getLogger("hashcore.web")

#: Seconds a control request has to send its body (a few bytes of JSON).
BODY_SECONDS = 5.0


class Controls:
    """The control routes of one dashboard.

    Args:
        miner: the miner steered.
        allowed: whether control requests are taken at all.
        token: the control token; :meth:`issue_token` makes one when control is allowed
            and none was given.
        throttle: the running throttle, for the power target (it may be set later).
        snapshot: the page's figures now, sent back with each answer.
    """

    def __init__(self, miner: MinerControl, *, allowed: bool, token: str | None, throttle: ThrottleControl | None,
                 snapshot: Callable[[], dict[str, Any]]) -> None:
        self.miner = miner
        self.allowed = allowed
        self.token = token
        self.throttle = throttle
        self._snapshot = snapshot

    def issue_token(self) -> None:
        if self.allowed and self.token is None:
            self.token = secrets.token_urlsafe(24)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/control/pause", self.pause)
        router.add_post("/api/control/resume", self.resume)
        router.add_post("/api/control/target", self.target)
        router.add_post("/api/control/pool", self.pool)

    async def pause(self, request: web.Request) -> web.Response:
        self._authorize(request)
        await _body(request)
        self.miner.pause()
        return self._done(request, "paused: hashing stopped, the pool connection stays")

    async def resume(self, request: web.Request) -> web.Response:
        self._authorize(request)
        await _body(request)
        self.miner.resume()
        return self._done(request, "resumed")

    async def target(self, request: web.Request) -> web.Response:
        self._authorize(request)
        body = await _body(request)
        if "watts" not in body:
            raise Refused(400, "send {\"watts\": W} for a power target, or {\"watts\": null} to clear it")
        watts = body["watts"]
        if watts is not None:
            try:
                watts = power_target(watts)  # the API's rule: above 0 W
            except ConfigError as exc:
                raise Refused(400, f"{exc}, or null to clear it; got {watts!r:.40}") from None
        if self.throttle is None:
            raise Refused(409, "no throttle is running, so there is no power target to set")
        try:
            self.throttle.set_target(watts)
        except (HashcoreError, ValueError) as exc:
            raise Refused(400, f"power target refused: {exc}") from None
        return self._done(request, "power target cleared" if watts is None else f"power target {watts:g} W")

    async def pool(self, request: web.Request) -> web.Response:
        self._authorize(request)
        body = await _body(request)
        index = body.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise Refused(400, f"send {{\"index\": N}} with the pool's number from 0; got {index!r:.40}")
        try:
            self.miner.switch_pool(index)
        except ConfigError as exc:
            raise Refused(400, str(exc)) from None
        return self._done(request, f"switching to pool {index}")

    def _authorize(self, request: web.Request) -> None:
        if not self.allowed:
            raise Refused(403, "control is off: start the miner with --web-allow-control to allow it")
        supplied = request.headers.get("X-Hashcore-Token")  # undecodable bytes arrive as surrogates
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if supplied is None and scheme.lower() == "bearer":
            supplied = credentials.strip()
        challenge = {"WWW-Authenticate": 'Bearer realm="hashcore"'}
        if not supplied:
            raise Refused(401, "control needs the token printed when the miner started: send "
                               "'Authorization: Bearer TOKEN' or 'X-Hashcore-Token: TOKEN'", challenge)
        assert self.token is not None
        if not hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"),
                                   self.token.encode("utf-8", "surrogatepass")):
            raise Refused(401, "wrong control token", challenge)

    def _done(self, request: web.Request, message: str) -> web.Response:
        """The answer to a control request carried out (and its line in the log)."""
        log.info("dashboard control: %s from %s: %s", request.path.rsplit("/", 1)[-1], request.remote, message)
        return web.json_response({"ok": True, "message": message, "stats": self._snapshot()}, dumps=json_text)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(BODY_SECONDS):
            raw = await request.read()
    except TimeoutError:
        raise Refused(408, f"the request body did not arrive within {BODY_SECONDS:g} s",
                      {"Connection": "close"}) from None
    if not raw.strip():
        return {}
    try:
        data = boundedjson.loads(raw, reject_duplicates=True)
    except ValueError as exc:
        raise Refused(400, f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "request body must be a JSON object")
    return data
