"""The API's commands: a request's bytes in, the reply's bytes out, no I/O.

:class:`Dispatcher` parses a request, checks each command against the client's access,
reads its parameters and runs it: report commands answer with the sections
:mod:`hashcore.api.sections` renders from one snapshot; write commands turn the miner's
and the throttle's knobs (:mod:`hashcore.control`).

Report commands (anyone the allow list serves): ``version``, ``config``, ``summary``,
``pools``, ``devs``, ``stats``, ``devdetails``, ``coin``, ``power``, ``check|CMD``.
Write commands (``W:`` clients only): ``switchpool|N``, ``enablepool|N``,
``disablepool|N``, ``addpool|URL,USER,PASS`` (at most :data:`MAX_POOLS` pools in all;
USER and PASS are that pool's worker unless the URL carries its own), ``pause``,
``resume``, ``powertarget|WATTS`` (``powertarget|off`` clears it), ``privileged``, ``quit``.

Field names and units follow cgminer 4.x (``MHS av`` in MH/s, ``Elapsed`` in seconds,
``Last Share Time`` in epoch seconds, percentages in percent). Backends are devices:
``opencl`` is a ``GPU``, ``asic`` an ``ASC``, the others ``CPU``. hashcore adds, where
modern firmware reports power: ``Power`` (W over the last 5 s), ``Power av`` (W since
start), ``Energy`` (J since start), ``J/TH``, ``Energy Source`` (``rapl``, ``nvml``,
``asic``, ``estimate``), ``Energy Exact`` (false for an estimate) and, with a throttle,
``Power Limit`` (the budget in W). A figure that does not exist yet (J/TH before the
first hash) is null in JSON and empty in text. Pool passwords never appear; a password
written into a pool URL is removed. A device's ``Status`` follows the engine's state of
its backend (``Alive`` mining or idle, ``Sick`` retrying, ``Dead`` failed), told in full
in ``State``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from hashcore._version import __version__
from hashcore.api import sections
from hashcore.api.access import Access
from hashcore.api.protocol import (
    API_VERSION,
    Code,
    Command,
    Reply,
    RequestError,
    Section,
    Severity,
    parse_request,
    render,
    render_error,
    split_parameter,
    status,
)
from hashcore.config import with_credentials
from hashcore.control import MAX_POOLS, MinerControl, MinerStats, ThrottleControl, power_target, redact_url
from hashcore.errors import ConfigError
from hashcore.stratum.urls import split_pool_url

log = logging.getLogger("hashcore.api")

DESCRIPTION = f"hashcore {__version__}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reply to send, and whether the client asked the miner to quit."""

    data: bytes
    quit: bool = False


@dataclass(slots=True)
class _Context:
    miner: MinerControl
    access: Access
    _stats: MinerStats | None = field(default=None)

    @property
    def stats(self) -> MinerStats:
        # One snapshot per request, so joined commands agree with each other.
        if self._stats is None:
            self._stats = self.miner.stats()
        return self._stats

    def changed(self) -> None:
        self._stats = None


Handler = Callable[["Dispatcher", _Context, str], Reply]


@dataclass(frozen=True, slots=True)
class _Spec:
    handler: Handler
    write: bool


class Dispatcher:
    """Answers API requests for one miner.

    Args:
        miner: the miner to report on and control.
        throttle: the power-budget follower for ``powertarget`` and ``Power Limit``.
        can_quit: whether ``quit`` is honoured (the server calls its callback).
    """

    def __init__(self, miner: MinerControl, throttle: ThrottleControl | None = None, can_quit: bool = False) -> None:
        self.miner = miner
        self.throttle = throttle
        self.can_quit = can_quit

    def handle(self, data: bytes, access: Access) -> Outcome:
        try:
            request = parse_request(data)
        except RequestError as error:
            return Outcome(render_error(error, DESCRIPTION))
        context = _Context(self.miner, access)
        replies: dict[str, Reply] = {}
        quit_requested = False
        for command in request.commands:
            reply = self._run(context, command, request.joined)
            replies[command.name] = reply
            quit_requested = quit_requested or reply.status.code == Code.BYE
        return Outcome(render(request.json, replies, request.joined), quit_requested)

    def _run(self, context: _Context, command: Command, joined: bool) -> Reply:
        spec = COMMANDS.get(command.name)
        if spec is None:
            return _error(Code.INVALID_COMMAND, "Invalid command")
        # cgminer joins report commands only.
        if spec.write and (joined or not context.access.write):
            log.info("API: access denied to %r", command.name)
            return _error(Code.ACCESS_DENIED, f"Access denied to '{command.name}' command")
        try:
            return spec.handler(self, context, command.parameter)
        except Exception as exc:
            log.exception("API command %r failed", command.name)
            return _reply(Severity.FATAL, Code.FAILED, f"{command.name} failed: {exc}")
        finally:
            if spec.write:
                context.changed()

    # --- report commands (their rows: hashcore.api.sections) ---------------------------------

    def version(self, context: _Context, parameter: str) -> Reply:
        row = {"hashcore": __version__, "API": API_VERSION, "Miner": DESCRIPTION, "Type": "hashcore"}
        return _reply(Severity.SUCCESS, Code.VERSION, "hashcore versions", Section("VERSION", [row]))

    def config(self, context: _Context, parameter: str) -> Reply:
        row = sections.config_row(context.stats, throttled=self.throttle is not None)
        return _reply(Severity.SUCCESS, Code.CONFIG, "hashcore config", Section("CONFIG", [row]))

    def summary(self, context: _Context, parameter: str) -> Reply:
        row = sections.summary_row(context.stats, self.throttle)
        return _reply(Severity.SUCCESS, Code.SUMMARY, "Summary", Section("SUMMARY", [row]))

    def pools(self, context: _Context, parameter: str) -> Reply:
        rows = sections.pool_rows(context.stats)
        return _reply(Severity.SUCCESS, Code.POOL, f"{len(rows)} Pool(s)", Section("POOLS", rows, keyed=True))

    def devs(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        if not stats.backends:
            return _error(Code.NODEVS, "No devices")
        rows = sections.device_rows(stats)
        return _reply(Severity.SUCCESS, Code.DEVS, sections.device_counts(stats), Section("DEVS", rows, keyed=True))

    def devdetails(self, context: _Context, parameter: str) -> Reply:
        rows = sections.devdetails_rows(context.stats)
        return _reply(Severity.SUCCESS, Code.DEVDETAILS, "Device Details", Section("DEVDETAILS", rows, keyed=True))

    def stats(self, context: _Context, parameter: str) -> Reply:
        rows = sections.stats_rows(context.stats, self.throttle)
        return _reply(Severity.SUCCESS, Code.STATS, "hashcore stats", Section("STATS", rows, keyed=True))

    def coin(self, context: _Context, parameter: str) -> Reply:
        row = sections.coin_row(context.stats)
        return _reply(Severity.SUCCESS, Code.COIN, "hashcore coin", Section("COIN", [row]))

    def power(self, context: _Context, parameter: str) -> Reply:
        row = sections.power_row(context.stats, self.throttle)
        return _reply(Severity.SUCCESS, Code.POWER, "Power", Section("POWER", [row]))

    def check(self, context: _Context, parameter: str) -> Reply:
        name = parameter.strip().lower()
        if not name:
            return _error(Code.MISSING_CHECK, "Missing check cmd")
        spec = COMMANDS.get(name)
        access = spec is not None and (not spec.write or context.access.write)
        row = {"Exists": "Y" if spec is not None else "N", "Access": "Y" if access else "N"}
        return _reply(Severity.SUCCESS, Code.CHECK, "Check command", Section("CHECK", [row]))

    # --- write commands ------------------------------------------------------------------

    def switchpool(self, context: _Context, parameter: str) -> Reply:
        index = _pool_index(context, parameter)
        if isinstance(index, Reply):
            return index
        context.miner.switch_pool(index)
        return _reply(Severity.SUCCESS, Code.SWITCHED_POOL, f"Switching to pool {index}:'{_pool_url(context, index)}'")

    def enablepool(self, context: _Context, parameter: str) -> Reply:
        index = _pool_index(context, parameter)
        if isinstance(index, Reply):
            return index
        url = _pool_url(context, index)
        if context.stats.pools[index].enabled:
            return _reply(Severity.INFO, Code.ALREADY_ENABLED_POOL, f"Pool {index}:'{url}' already enabled")
        context.miner.enable_pool(index)
        return _reply(Severity.SUCCESS, Code.ENABLED_POOL, f"Enabling pool {index}:'{url}'")

    def disablepool(self, context: _Context, parameter: str) -> Reply:
        index = _pool_index(context, parameter)
        if isinstance(index, Reply):
            return index
        url = _pool_url(context, index)
        if not context.stats.pools[index].enabled:
            return _reply(Severity.INFO, Code.ALREADY_DISABLED_POOL, f"Pool {index}:'{url}' already disabled")
        try:
            context.miner.disable_pool(index)
        except ConfigError:
            return _error(Code.LAST_POOL, f"Cannot disable last active pool {index}:'{url}'")
        return _reply(Severity.SUCCESS, Code.DISABLED_POOL, f"Disabling pool {index}:'{url}'")

    def addpool(self, context: _Context, parameter: str) -> Reply:
        if not parameter.strip():
            return _error(Code.MISSING_POOL_DETAILS, "Missing addpool details")
        fields = split_parameter(parameter)
        url = fields[0].strip()
        given_user = fields[1].strip() if len(fields) > 1 else ""
        given_password = fields[2] if len(fields) > 2 else None
        if not url:
            return _error(Code.MISSING_POOL_DETAILS, "Missing addpool details")
        # Every message names the URL without its password: the request's password is never echoed.
        shown = redact_url(url)
        if len(context.stats.pools) >= MAX_POOLS:
            return _error(Code.TOO_MANY_POOLS, f"Cannot add pool '{shown}': at most {MAX_POOLS} pools")
        url_user = split_pool_url(url)[1]
        connect = with_credentials(url, given_user, given_password) if given_user and not url_user else url
        try:
            index = context.miner.add_pool(connect)
        except ConfigError as exc:
            return _error(Code.INVALID_POOL_DETAILS, f"Invalid addpool details '{shown}': {exc}")
        context.changed()
        user = context.stats.pools[index].user
        if given_user and given_user != user:
            return _reply(
                Severity.WARNING,
                Code.ADDED_POOL_OTHER_USER,
                f"Added pool {index}:'{shown}'; it mines as '{user}', the user in its URL ('{given_user}' and "
                "the password given were not used)",
            )
        return _reply(Severity.SUCCESS, Code.ADDED_POOL, f"Added pool {index}:'{shown}' as '{user}'")

    def pause(self, context: _Context, parameter: str) -> Reply:
        context.miner.pause()
        return _reply(Severity.SUCCESS, Code.PAUSED, "Mining paused; the pool connection stays up")

    def resume(self, context: _Context, parameter: str) -> Reply:
        context.miner.resume()
        return _reply(Severity.SUCCESS, Code.RESUMED, "Mining resumed")

    def powertarget(self, context: _Context, parameter: str) -> Reply:
        if self.throttle is None:
            return _error(Code.NO_THROTTLE, "No throttle is running: start the miner with a power policy")
        text = parameter.strip().lower()
        if text in ("", "off", "none", "auto"):
            self.throttle.set_target(None)
            return _reply(Severity.SUCCESS, Code.POWER_TARGET, "Power target cleared")
        try:
            watts = power_target(float(text))
        except (ValueError, ConfigError):
            return _error(Code.INVALID_POWER_TARGET, f"Invalid power target '{parameter[:40]}' (watts > 0, or 'off')")
        self.throttle.set_target(watts)
        return _reply(Severity.SUCCESS, Code.POWER_TARGET, f"Power target set to {watts:g} W")

    def privileged(self, context: _Context, parameter: str) -> Reply:
        return _reply(Severity.SUCCESS, Code.ACCESS_OK, "Privileged access OK")

    def quit(self, context: _Context, parameter: str) -> Reply:
        if not self.can_quit:
            return _error(Code.NO_QUIT, "quit is not available: no one to hand it to")
        return Reply(status(Severity.SUCCESS, Code.BYE, "BYE", DESCRIPTION), text="BYE")


COMMANDS: dict[str, _Spec] = {
    "version": _Spec(Dispatcher.version, write=False),
    "config": _Spec(Dispatcher.config, write=False),
    "summary": _Spec(Dispatcher.summary, write=False),
    "pools": _Spec(Dispatcher.pools, write=False),
    "devs": _Spec(Dispatcher.devs, write=False),
    "devdetails": _Spec(Dispatcher.devdetails, write=False),
    "stats": _Spec(Dispatcher.stats, write=False),
    "coin": _Spec(Dispatcher.coin, write=False),
    "power": _Spec(Dispatcher.power, write=False),
    "check": _Spec(Dispatcher.check, write=False),
    "switchpool": _Spec(Dispatcher.switchpool, write=True),
    "enablepool": _Spec(Dispatcher.enablepool, write=True),
    "disablepool": _Spec(Dispatcher.disablepool, write=True),
    "addpool": _Spec(Dispatcher.addpool, write=True),
    "pause": _Spec(Dispatcher.pause, write=True),
    "resume": _Spec(Dispatcher.resume, write=True),
    "powertarget": _Spec(Dispatcher.powertarget, write=True),
    "privileged": _Spec(Dispatcher.privileged, write=True),
    "quit": _Spec(Dispatcher.quit, write=True),
}


# --- helpers -------------------------------------------------------------------------------


def _reply(severity: Severity, code: Code, message: str, *sections: Section) -> Reply:
    return Reply(status(severity, code, message, DESCRIPTION), list(sections))


def _error(code: Code, message: str) -> Reply:
    return _reply(Severity.ERROR, code, message)


def _pool_index(context: _Context, parameter: str) -> int | Reply:
    text = parameter.strip()
    if not text:
        return _error(Code.MISSING_POOL_ID, "Missing pool id parameter")
    count = len(context.stats.pools)
    # ASCII digits only: int() would also take "1_0", " ٠" (Arabic-Indic zero) and "+1".
    if not (text.isascii() and text.isdigit()):
        return _error(Code.INVALID_POOL_ID, f"Invalid pool id '{text[:40]}' - range is 0 - {count - 1}")
    index = int(text)
    if not 0 <= index < count:
        return _error(Code.INVALID_POOL_ID, f"Invalid pool id {index} - range is 0 - {count - 1}")
    return index


def _pool_url(context: _Context, index: int) -> str:
    return context.stats.pools[index].url
