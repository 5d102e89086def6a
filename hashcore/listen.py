"""Listen addresses for hashcore's servers (API, metrics, dashboard), as flags give them."""

from __future__ import annotations

from hashcore.errors import ConfigError


def parse_listen(text: str, what: str = "a listen address") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (loopback) -> (host, port).

    Raises ConfigError naming ``what`` and the accepted forms."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon:
        raise ConfigError(f"{what} is HOST:PORT, e.g. 127.0.0.1:8080; got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{what}: write an IPv6 address in brackets, e.g. [::1]:8080; got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{what}: {port_text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} is not 0-65535")
    return host or "127.0.0.1", port
