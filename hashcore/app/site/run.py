"""``hashcore site``: a site run put together from its file and flags.

The controller, the presenters the caller starts for it (the site page and metrics: a
floor above, through a :data:`StartServices` hook), and the loop that ticks it until the
duration ends or the operator stops it (SIGINT, SIGTERM); then the run folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from hashcore.app.site.config import SiteConfig, load_site_config
from hashcore.app.site.controller import SiteController
from hashcore.app.site.view import SiteView

#: Starts the presenters for ``controller`` (each one's stop pushed on the exit stack).
StartServices = Callable[[SiteController, SiteConfig, contextlib.AsyncExitStack], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """What ``hashcore site`` was asked for (None: as the file says).

    Attributes:
        config: the site file.
        duration: stop after this many seconds (None: run until stopped).
        listen: where the site page and /metrics listen (``off``: nowhere).
        run_dir: where to write the run folder at the end.
    """

    config: str
    duration: float | None = None
    listen: str | None = None
    run_dir: str | None = None


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    """How a run ended: its last view and the run folder written (None: none)."""

    view: SiteView
    run_dir: str | None


def site_config(options: SiteOptions) -> SiteConfig:
    """The site file with the flags over it."""
    config = load_site_config(options.config)
    if options.listen is not None:
        config = replace(config, listen=None if options.listen == "off" else options.listen)
    if options.run_dir is not None:
        config = replace(config, run_dir=options.run_dir)
    return config


async def run_site(options: SiteOptions, on_tick: Callable[[SiteView], None],
                   start_services: StartServices) -> SiteOutcome:
    """Run the site until ``duration`` passes or SIGINT/SIGTERM; ``on_tick`` sees each tick."""
    config = site_config(options)
    controller = SiteController(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as running:
        running.push_async_callback(controller.close)
        await start_services(controller, config, running)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                running.callback(loop.remove_signal_handler, sig)
        controller.on_tick = on_tick
        view = await controller.run(options.duration, stop)
    written = controller.write_run(config.run_dir) if config.run_dir else None
    return SiteOutcome(view, written)
