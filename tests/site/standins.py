"""Stand-in miners for the site's tests and its scaling benchmark.

A :class:`MinerModel` is one miner's physics, simple and deterministic on the clock it
is given: its power follows ``min(target, max_watts)`` (``sleep_watts`` while paused)
with a first-order lag, its hashrate is its power over its J/TH, and its energy and hash
counters are the exact integrals of both.

A :class:`Standin` serves that model over the cgminer API exactly as a hashcore instance
started with ``--power-budget`` would: the answers are hashcore's own
(:class:`hashcore.api.Dispatcher` over the model), one request per connection, each reply
ended by a NUL byte; only the transport is leaner than :class:`hashcore.api.ApiServer`,
so a thousand of them run on one core. A stand-in made read-only answers write commands
"access denied"; one made without a throttle has no ``Power Limit`` and refuses
``powertarget``. :class:`StandinFleet` serves many from one event loop, each on a port
the kernel chose; :class:`StandinLink` is a :class:`~hashcore.app.site.links.MinerLink`
over a model in the same process, without a socket.

A fleet in a process of its own: :mod:`tests.site.fleet`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from hashcore.api import Access, Dispatcher
from hashcore.api.commands import DESCRIPTION
from hashcore.api.protocol import MAX_REQUEST, Code, RequestError, RequestReader, render_error
from hashcore.app.site.links import LinkReading, MinerLinkError
from hashcore.control import BackendView, EnergyView, MinerStats
from hashcore.errors import ConfigError
from hashcore.throttle.site import READ_ONLY, SLEEP, TARGET, TIMEOUT, MinerReading

Clock = Callable[[], float]

#: hashcore's API server: seconds without new bytes that end a partial request, and the
#: seconds a client has to send one at all.
QUIET_S = 0.25
REQUEST_TIMEOUT_S = 5.0

#: What the stand-ins report as the source of their power figures.
ENERGY_SOURCE = "standin"


@dataclasses.dataclass
class MinerModel:
    """One miner's power, hashrate and counters over time.

    Attributes:
        max_watts: its power at full speed.
        j_per_th: its efficiency.
        sleep_watts: what it draws paused.
        lag_s: the time constant of its power following a new aim (0: at once).
        budget_w: the ``--power-budget`` it runs with (None: its full power).
        clock: seconds, monotonic.
    """

    max_watts: float = 3000.0
    j_per_th: float = 30.0
    sleep_watts: float = 10.0
    lag_s: float = 2.0
    budget_w: float | None = None
    clock: Clock = time.monotonic
    paused: bool = False
    target_w: float | None = None
    throttled: bool = True
    watts: float = dataclasses.field(init=False)
    energy_j: float = dataclasses.field(init=False, default=0.0)
    hashes: float = dataclasses.field(init=False, default=0.0)
    started: float = dataclasses.field(init=False)
    _last: float = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.started = self._last = self.clock()
        self.watts = self.aim_w()

    def limit_w(self) -> float | None:
        """The power limit in force (a target, else the budget); None without a throttle."""
        if not self.throttled:
            return None
        return self.target_w if self.target_w is not None else self.budget_w if self.budget_w is not None \
            else self.max_watts

    def aim_w(self) -> float:
        """Where its power is heading."""
        if self.paused:
            return self.sleep_watts
        limit = self.limit_w()
        return self.max_watts if limit is None else max(self.sleep_watts, min(limit, self.max_watts))

    def hashrate_hs(self) -> float:
        return 0.0 if self.paused else self.watts / self.j_per_th * 1e12

    def advance(self) -> None:
        """Bring the power and the counters to the clock's now."""
        now = self.clock()
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        aim, start = self.aim_w(), self.watts
        decay = math.exp(-dt / self.lag_s) if self.lag_s > 0 else 0.0
        energy = aim * dt + (start - aim) * self.lag_s * (1.0 - decay)
        self.watts = aim + (start - aim) * decay
        self.energy_j += energy
        if not self.paused:
            self.hashes += energy / self.j_per_th * 1e12

    # the knobs, as the API turns them (each first books the time before it)

    def pause(self) -> None:
        self.advance()
        self.paused = True

    def resume(self) -> None:
        self.advance()
        self.paused = False

    def set_target(self, watts: float | None) -> None:
        self.advance()
        self.target_w = watts

    def stats(self) -> MinerStats:
        """The snapshot a hashcore instance's API reports from."""
        self.advance()
        seconds = max(self._last - self.started, 1e-9)
        rate = self.hashrate_hs()
        hashes = int(self.hashes)
        energy = EnergyView(
            joules=self.energy_j, watts=self.energy_j / seconds,
            j_per_hash=self.energy_j / hashes if hashes else None,
            j_per_th=self.energy_j / hashes * 1e12 if hashes else None,
            source=ENERGY_SOURCE, exact=True, note="a stand-in's model", recent_watts=self.watts)
        backend = BackendView(hashes=hashes, hashrate_hs=hashes / seconds, recent_hashrate_hs=rate, threads=1,
                              active_threads=1, state="paused" if self.paused else "mining", energy=energy)
        return MinerStats(seconds=seconds, hashes=hashes, hashrate_hs=hashes / seconds, recent_hashrate_hs=rate,
                          accepted=0, rejected=0, stale=0, discarded=0, duplicates=0, block_candidates=0,
                          blocks_accepted=0, pools=(), backends={"asic": backend}, energy=energy,
                          active_pool=None, paused=self.paused)


def fleet_models(count: int, clock: Clock = time.monotonic, **fields: Any) -> list[MinerModel]:
    """``count`` models of a mixed fleet: efficiencies 18-40 J/TH, full power 1.5-3.5 kW,
    the same for the same ``count``."""
    return [MinerModel(max_watts=1500.0 + (i * 37 % 21) * 100.0, j_per_th=18.0 + (i * 13 % 23), clock=clock,
                       **fields) for i in range(count)]


class _MinerKnobs:
    """The model as :class:`hashcore.control.MinerControl`: it pauses and resumes; it has
    no pools, threads or operating points to turn."""

    def __init__(self, model: MinerModel) -> None:
        self.model = model
        self.shares_in_flight = 0

    @property
    def user(self) -> str:
        return "standin"

    @property
    def paused(self) -> bool:
        return self.model.paused

    def stats(self) -> MinerStats:
        return self.model.stats()

    def pause(self) -> None:
        self.model.pause()

    def resume(self) -> None:
        self.model.resume()

    def _none(self, *args: object) -> Any:
        raise ConfigError("a stand-in has no such knob")

    set_duty = duty = max_threads = set_threads = active_threads = _none
    set_operating_point = add_pool = switch_pool = enable_pool = disable_pool = _none

    def has_operating_points(self, backend: str) -> bool:
        return False


class _Throttle:
    """The model's power limit as :class:`hashcore.control.ThrottleControl`."""

    def __init__(self, model: MinerModel) -> None:
        self.model = model

    def set_target(self, watts: float | None) -> None:
        self.model.set_target(watts)

    def status(self) -> dict[str, Any]:
        return {"budget_w": self.model.limit_w(), "power_w": self.model.watts, "policy": "constant"}


class Standin:
    """One stand-in miner's API; ``write``: whether clients may steer it (``W:``)."""

    def __init__(self, model: MinerModel | None = None, *, write: bool = True, host: str = "127.0.0.1") -> None:
        self.model = model or MinerModel()
        self.write = write
        self.host = host
        self.requests = 0
        self.dispatcher = Dispatcher(_MinerKnobs(self.model), _Throttle(self.model) if self.model.throttled else None)
        self._server: asyncio.Server | None = None
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self._port}" if ":" in self.host else f"{self.host}:{self._port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # The port it had before, if it had one: a miner restarted keeps its address.
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self._port,
                                                reuse_address=True)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def answer(self, request: bytes, oversized: bool = False) -> bytes:
        """The bytes a hashcore instance sends for ``request``, NUL included."""
        self.requests += 1
        if oversized:
            error = RequestError(Code.REQUEST_TOO_LARGE, f"Request too large (over {MAX_REQUEST} bytes)",
                                 request.lstrip()[:1] == b"{")
            return render_error(error, DESCRIPTION) + b"\x00"
        return self.dispatcher.handle(request, Access(write=self.write)).data + b"\x00"


class _Connection(asyncio.Protocol):
    """One client: one request (framed as hashcore's server frames it), one reply, close."""

    def __init__(self, standin: Standin) -> None:
        self.standin = standin
        self.frame = RequestReader(MAX_REQUEST)
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._wait(REQUEST_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        self.frame.feed(data)
        if self.frame.done:
            self._answer()
        else:
            self._wait(QUIET_S)

    def eof_received(self) -> bool:
        self.frame.finish()
        self._answer()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _wait(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(seconds, self._quiet)

    def _quiet(self) -> None:
        if self.frame.empty:
            if self.transport is not None:
                self.transport.close()
            return
        self.frame.finish()
        self._answer()

    def _answer(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.timer is not None:
            self.timer.cancel()
        self.transport.write(self.standin.answer(self.frame.request(), self.frame.oversized))
        self.transport.close()


class StandinFleet:
    """Stand-ins served from one event loop, each on its own port.

    ``async with StandinFleet(fleet_models(100)) as fleet: fleet.addresses``
    """

    def __init__(self, models: Sequence[MinerModel], *, write: bool = True, host: str = "127.0.0.1") -> None:
        self.standins = [Standin(model, write=write, host=host) for model in models]

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self.standins]

    async def start(self) -> None:
        for standin in self.standins:
            await standin.start()

    async def stop(self) -> None:
        for standin in self.standins:
            await standin.stop()

    async def __aenter__(self) -> StandinFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class StandinLink:
    """A :class:`~hashcore.app.site.links.MinerLink` over a model in this process.

    It answers as :class:`hashcore.app.site.cgminer.CgminerLink` reads a stand-in: the
    same control, target and notes. Set ``failure`` (``timeout``/``refused``) to make
    every call fail that way, as an unreachable miner would.
    """

    def __init__(self, model: MinerModel, address: str, *, write: bool = True, kind: str = "hashcore") -> None:
        self.model = model
        self.address = address
        self.kind = kind
        self.write = write
        self.failure: str | None = None
        self.orders: list[tuple[str, float | None]] = []

    def _check(self) -> None:
        if self.failure is not None:
            raise MinerLinkError(f"miner {self.address} is made to fail ({self.failure})", self.failure)

    async def read(self) -> LinkReading:
        self._check()
        self.model.advance()
        limit = self.model.limit_w()
        if not self.write:
            control, note = READ_ONLY, "no write access: start it with --api-allow W:<the site address>"
        elif limit is None:
            control, note = SLEEP, "no power budget: start it with --power-budget WATTS to take power targets"
        else:
            control, note = TARGET, ""
        reading = MinerReading(watts=self.model.watts, hashrate_hs=self.model.hashrate_hs(),
                               asleep=self.model.paused, control=control,
                               target_w=limit if control == TARGET else None)
        return LinkReading(reading, energy_j=self.model.energy_j, hashes=self.model.hashes,
                           energy_source=ENERGY_SOURCE, note=note)

    def _steer(self, action: str, watts: float | None = None) -> None:
        """Checked as hashcore's API checks a write command: access first, then a throttle."""
        self._check()
        if not self.write:
            raise MinerLinkError(f"miner {self.address} refused {action}: Access denied to '{action}' command",
                                 TIMEOUT)
        if action == "powertarget" and not self.model.throttled:
            raise MinerLinkError(f"miner {self.address} refused powertarget: No throttle is running", TIMEOUT)
        self.orders.append((action, watts))

    async def set_target(self, watts: float) -> None:
        self._steer("powertarget", watts)
        self.model.set_target(watts)

    async def sleep(self) -> None:
        self._steer("pause")
        self.model.pause()

    async def wake(self) -> None:
        self._steer("resume")
        self.model.resume()

    async def close(self) -> None:
        """Nothing to let go."""
