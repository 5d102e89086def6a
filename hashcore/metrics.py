"""Prometheus metrics over HTTP: the miner's figures at scrape time.

:class:`MinerCollector` reads :meth:`Miner.stats` when Prometheus scrapes, so there is no
second copy of any counter: a scrape and the JSON summary (or the cgminer API) taken at
the same moment show the same numbers. Counters (``*_total``) are the miner's own
monotonic counts since start.

:class:`MetricsServer` serves ``/metrics`` from the miner's asyncio loop (aiohttp) rather
than with ``prometheus_client.start_http_server``: the miner's counters live on the loop and
are changed there without locks (``stats()`` walks deques the loop appends to), so a
scrape in the exporter's own thread could race them. On the loop, a scrape is one more
short callback between share answers, and the server starts and stops with the miner.

Metrics (``backend``, ``pool``, ``url``, ``outcome``, ``window`` are labels)::

    hashcore_build_info{version}                      1
    hashcore_uptime_seconds                           seconds since the miner started
    hashcore_paused                                   1 while paused by the operator
    hashcore_hashes_total{backend}                    hashes done
    hashcore_hashrate_hashes_per_second{backend,window="average"|"5s"}
    hashcore_backend_threads{backend} / _active_threads{backend} / _duty_ratio{backend}
    hashcore_backend_false_positives_total{backend} / _errors_total{backend}
    hashcore_backend_power_watts{backend}             average since start
    hashcore_backend_energy_joules_total{backend}
    hashcore_backend_joules_per_terahash{backend}     (absent before the first hash)
    hashcore_backend_energy_info{backend,source,exact}
    hashcore_power_watts{window="average"|"5s"}       all backends
    hashcore_energy_joules_total
    hashcore_joules_per_terahash
    hashcore_energy_info{source,exact}
    hashcore_power_budget_watts                       the throttle's budget (when there is one)
    hashcore_shares_total{pool,url,outcome="accepted"|"rejected"|"stale"|"unanswered"}
    hashcore_pool_difficulty_accepted_total{pool,url}
    hashcore_pool_up{pool,url}                        1 while connected
    hashcore_pool_enabled{pool,url} / _priority{pool,url} / _difficulty{pool,url}
    hashcore_pool_connects_total{pool,url}
    hashcore_pool_last_share_timestamp_seconds{pool,url}
    hashcore_shares_discarded_total                   found for a job already stale
    hashcore_shares_duplicate_total
    hashcore_block_candidates_total / hashcore_blocks_accepted_total

Pool URLs never carry a password (``user:pass@`` is cut to ``user@``).

What the server takes: ``GET`` and ``HEAD`` without a body, nothing else (405 at once,
any body unread, the connection closed); and, against DNS rebinding, only requests whose
``Host`` names it: the listen address, ``localhost``, ``127.0.0.1``, ``[::1]`` or a name
the operator allowed (``--metrics-allow-host``, e.g. the name Prometheus scrapes it by);
any other gets 403 (see :class:`hashcore.listen.HostRule`). A request the HTTP parser
cannot read is one short log line, rate-limited. Stopping waits at most
:data:`SHUTDOWN_SECONDS` for a scrape in progress.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hashcore._version import __version__
from hashcore.control import BackendView, EnergyView, MinerControl, PoolView, ThrottleControl, budget_watts
from hashcore.listen import HostRule, HttpListener, text_refusal

log = logging.getLogger("hashcore.metrics")

_OUTCOMES = ("accepted", "rejected", "stale", "unanswered")

#: Seconds stopping waits for a scrape in progress (twice at most: to finish, then to cancel).
SHUTDOWN_SECONDS = 0.25
#: The methods served; a scrape never carries a body.
METHODS = ("GET", "HEAD")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MinerCollector(Collector):
    """Turns one ``miner.stats()`` snapshot per scrape into metric families."""

    def __init__(self, miner: MinerControl, throttle: ThrottleControl | None = None) -> None:
        self.miner = miner
        self.throttle = throttle

    def collect(self) -> Iterator[Metric]:
        stats = self.miner.stats()
        info = InfoMetricFamily("hashcore_build", "hashcore version")
        info.add_metric([], {"version": __version__})
        yield info
        yield GaugeMetricFamily("hashcore_uptime_seconds", "Seconds since the miner started", value=stats.seconds)
        yield GaugeMetricFamily("hashcore_paused", "1 while mining is paused by the operator", value=int(stats.paused))
        yield from self._backends(stats.backends)
        yield from self._energy(stats.energy)
        yield from self._pools(stats.pools)
        yield CounterMetricFamily(
            "hashcore_shares_discarded_total", "Shares found for a job that was already stale", value=stats.discarded
        )
        yield CounterMetricFamily(
            "hashcore_shares_duplicate_total", "Shares found twice and sent once", value=stats.duplicates
        )
        yield CounterMetricFamily(
            "hashcore_block_candidates_total", "Nonces meeting the block target that were submitted",
            value=stats.block_candidates,
        )
        yield CounterMetricFamily(
            "hashcore_blocks_accepted_total", "Block candidates the pool accepted", value=stats.blocks_accepted
        )

    def _backends(self, backends: Mapping[str, BackendView]) -> Iterator[Metric]:
        labels = ["backend"]
        hashes = CounterMetricFamily("hashcore_hashes_total", "Hashes done", labels=labels)
        rate = GaugeMetricFamily(
            "hashcore_hashrate_hashes_per_second", "Hashrate: average since start, and over the last 5 s",
            labels=[*labels, "window"],
        )
        threads = GaugeMetricFamily("hashcore_backend_threads", "Worker threads opened", labels=labels)
        active = GaugeMetricFamily("hashcore_backend_active_threads", "Worker threads allowed to scan", labels=labels)
        duty = GaugeMetricFamily("hashcore_backend_duty_ratio", "Fraction of the time the backend scans", labels=labels)
        false_positives = CounterMetricFamily(
            "hashcore_backend_false_positives_total", "Results that failed the exact check", labels=labels
        )
        errors = CounterMetricFamily("hashcore_backend_errors_total", "Scans or results that failed", labels=labels)
        watts = GaugeMetricFamily("hashcore_backend_power_watts", "Average power since start", labels=labels)
        joules = CounterMetricFamily("hashcore_backend_energy_joules_total", "Energy used", labels=labels)
        j_per_th = GaugeMetricFamily(
            "hashcore_backend_joules_per_terahash", "Energy per terahash since start", labels=labels
        )
        source = InfoMetricFamily("hashcore_backend_energy", "Where the energy figures come from", labels=labels)
        for name, backend in backends.items():
            hashes.add_metric([name], backend.hashes)
            rate.add_metric([name, "average"], backend.hashrate_hs)
            rate.add_metric([name, "5s"], backend.recent_hashrate_hs)
            threads.add_metric([name], backend.threads)
            active.add_metric([name], backend.active_threads)
            duty.add_metric([name], backend.duty)
            false_positives.add_metric([name], backend.false_positives)
            errors.add_metric([name], backend.errors)
            energy = backend.energy
            if energy is not None:
                _add(watts, [name], energy.watts)
                _add(joules, [name], energy.joules)
                _add(j_per_th, [name], energy.j_per_th)
            source.add_metric([name], _source_labels(energy))
        yield from (hashes, rate, threads, active, duty, false_positives, errors, watts, joules, j_per_th, source)

    def _energy(self, energy: EnergyView) -> Iterator[Metric]:
        watts = GaugeMetricFamily("hashcore_power_watts", "Power of all backends", labels=["window"])
        _add(watts, ["average"], energy.watts)
        _add(watts, ["5s"], energy.recent_watts)
        yield watts
        joules = CounterMetricFamily("hashcore_energy_joules_total", "Energy used by all backends")
        _add(joules, [], energy.joules)
        yield joules
        j_per_th = GaugeMetricFamily("hashcore_joules_per_terahash", "Energy per terahash since start")
        _add(j_per_th, [], energy.j_per_th)
        yield j_per_th
        source = InfoMetricFamily("hashcore_energy", "Where the energy figures come from")
        source.add_metric([], _source_labels(energy))
        yield source
        budget = budget_watts(self.throttle)
        if budget is not None:
            yield GaugeMetricFamily("hashcore_power_budget_watts", "The power budget being followed", value=budget)

    def _pools(self, pools: Sequence[PoolView]) -> Iterator[Metric]:
        labels = ["pool", "url"]
        shares = CounterMetricFamily(
            "hashcore_shares_total", "Shares by the pool's answer", labels=[*labels, "outcome"]
        )
        difficulty_accepted = CounterMetricFamily(
            "hashcore_pool_difficulty_accepted_total", "Sum of the difficulty of accepted shares", labels=labels
        )
        up = GaugeMetricFamily("hashcore_pool_up", "1 while connected to the pool", labels=labels)
        enabled = GaugeMetricFamily("hashcore_pool_enabled", "1 unless the operator disabled the pool", labels=labels)
        priority = GaugeMetricFamily("hashcore_pool_priority", "Failover rank (0 is tried first)", labels=labels)
        difficulty = GaugeMetricFamily("hashcore_pool_difficulty", "The pool's share difficulty", labels=labels)
        connects = CounterMetricFamily("hashcore_pool_connects_total", "Connections opened", labels=labels)
        last_share = GaugeMetricFamily(
            "hashcore_pool_last_share_timestamp_seconds", "When the last share was accepted", labels=labels
        )
        for index, pool in enumerate(pools):
            key = [str(index), pool.url]
            outcomes = {"accepted": pool.accepted, "rejected": pool.rejected, "stale": pool.stale,
                        "unanswered": pool.unanswered}
            for outcome in _OUTCOMES:
                shares.add_metric([*key, outcome], outcomes[outcome])
            difficulty_accepted.add_metric(key, pool.difficulty_accepted)
            up.add_metric(key, int(pool.connected))
            enabled.add_metric(key, int(pool.enabled))
            priority.add_metric(key, pool.priority)
            _add(difficulty, key, pool.difficulty)
            connects.add_metric(key, pool.connects)
            _add(last_share, key, pool.last_share_time)
        yield from (shares, difficulty_accepted, up, enabled, priority, difficulty, connects, last_share)


def _add(family: GaugeMetricFamily | CounterMetricFamily, labels: list[str], value: float | None) -> None:
    """Add a sample unless the figure does not exist yet (None)."""
    if value is not None:
        family.add_metric(labels, float(value))


def _source_labels(energy: EnergyView | None) -> dict[str, str]:
    if energy is None:
        return {"source": "none", "exact": "false"}
    return {"source": energy.source, "exact": "true" if energy.exact else "false"}


def registry_for(collector: MinerCollector) -> CollectorRegistry:
    """A registry of the miner's metrics and the process's (CPU, memory, Python)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class MetricsServer:
    """Serves ``GET /metrics`` (Prometheus text, or OpenMetrics when asked) on the loop.

    An aiohttp application (the dashboard's HTTP library) on the miner's loop, listening as
    the dashboard does (:class:`hashcore.listen.HttpListener`).

    Args:
        miner: the miner whose figures are served.
        host / port: where to listen (port 0 picks a free one; see :attr:`port`).
        throttle: the power-budget follower, for ``hashcore_power_budget_watts``; it may
            be set later through :attr:`throttle` (the CLI starts the server before the
            miner, and the throttle after it).
        allowed_hosts: more names (``miner.lan``, ``192.168.1.20``) the ``Host`` header may
            carry, besides the listen address and :data:`hashcore.listen.LOCAL_HOSTS`.
    """

    def __init__(
        self,
        miner: MinerControl,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle: ThrottleControl | None = None,
        *,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.hosts = HostRule(host, allowed_hosts, "--metrics-allow-host")
        # No lingering: a body sent anyway is never read, the connection is closed after the answer.
        self._listener = HttpListener("metrics", host, port, self.hosts,
                                      peer_log=logging.getLogger("hashcore.metrics.http"),
                                      shutdown_timeout=SHUTDOWN_SECONDS, lingering_time=0)
        self._collector = MinerCollector(miner, throttle)
        self.registry = registry_for(self._collector)

    @property
    def throttle(self) -> ThrottleControl | None:
        return self._collector.throttle

    @throttle.setter
    def throttle(self, throttle: ThrottleControl | None) -> None:
        self._collector.throttle = throttle

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        return self._listener.port

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._index)
        await self._listener.start(app)
        log.info("Prometheus metrics on http://%s:%d/metrics", self.host, self.port)
        if self.host in ("0.0.0.0", "::"):
            log.warning("metrics answer only to %s in the Host header: name the one Prometheus scrapes with "
                        "--metrics-allow-host", ", ".join(sorted(self.hosts.names)))

    async def stop(self) -> None:
        await self._listener.stop()

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """GET and HEAD only, without a body, addressed to this server by name."""
        if request.method not in METHODS:
            return text_refusal(405, f"{request.method} is not served here; use GET", {"Allow": ", ".join(METHODS)})
        if request.body_exists:
            return text_refusal(400, "a metrics request carries no body")
        refusal = self._listener.refusal(request)
        if refusal is not None:
            return text_refusal(*refusal)
        return await handler(request)

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text='<html><body><a href="/metrics">hashcore metrics</a></body></html>\n',
                            content_type="text/html")

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        try:
            body = encoder(self.registry)
        except Exception:
            log.exception("metrics: collecting failed")
            raise web.HTTPInternalServerError(text="collecting the metrics failed\n") from None
        response = web.Response(body=body, headers={"Content-Type": content_type})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression()
        return response
