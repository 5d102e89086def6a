"""``hashcore pool``: run the embedded Stratum pool until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from rich.console import Console

from hashcore.cli.argtypes import hex32, port, positive_float
from hashcore.errors import ConfigError
from hashcore.stratum.blocktemplate import MAINNET_NBITS
from hashcore.stratum.pool import EmbeddedPool
from hashcore.stratum.poolsession import VardiffPolicy


def add_parser(commands: argparse._SubParsersAction) -> None:
    pool = commands.add_parser("pool", help="run the embedded Stratum pool")
    pool.add_argument("--host", default="127.0.0.1")
    pool.add_argument("--port", type=port, default=3333)
    pool.add_argument("--difficulty", type=positive_float, default=1.0, help="starting share difficulty")
    pool.add_argument("--job-interval", type=positive_float, default=30.0, metavar="SECONDS")
    pool.add_argument("--nbits", type=hex32, default=MAINNET_NBITS, help="block target (hex; 207fffff = regtest)")
    pool.add_argument("--share-seconds", type=positive_float, default=5.0, help="vardiff: wanted seconds per share")
    pool.add_argument("--no-vardiff", action="store_true", help="keep the difficulty fixed")
    pool.add_argument("--tls-cert", default=None, metavar="FILE", help="serve stratum+ssl with this certificate")
    pool.add_argument("--tls-key", default=None, metavar="FILE")


def run(args: argparse.Namespace, console: Console) -> int:
    return asyncio.run(_pool(args, console))


async def _pool(args: argparse.Namespace, console: Console) -> int:
    context = None
    if args.tls_cert:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load --tls-cert/--tls-key: {exc}") from exc
    pool = EmbeddedPool(
        args.host,
        args.port,
        difficulty=args.difficulty,
        job_interval=args.job_interval,
        nbits=args.nbits,
        vardiff=None if args.no_vardiff else VardiffPolicy(target_seconds=args.share_seconds),
        ssl_context=context,
    )
    await pool.start()
    console.print(f"embedded pool on {pool.url} (difficulty {args.difficulty:g}); Ctrl-C stops it", highlight=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 10.0)
            stats = pool.stats
            console.print(
                f"accepted {stats.accepted}  rejected {stats.rejected_total} {dict(stats.rejected)}  "
                f"blocks {stats.blocks}",
                highlight=False,
            )
    finally:
        await pool.stop()
    return 0
