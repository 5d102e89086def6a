"""Pool URLs: parsed into an :class:`Endpoint`, checked, and shown without their secrets.

``stratum+tcp://user:password@host:port`` (or ``stratum+ssl://``, a bracketed IPv6
address, no scheme at all). The credentials end at the last '@', so a password may hold
any character as typed; :func:`redact_url` is the one rule for every URL that is shown or
logged, and a :class:`ConfigError` about a URL never names its password.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import unquote

from hashcore.errors import ConfigError

_SCHEMES = {"stratum+tcp": False, "stratum": False, "tcp": False, "stratum+ssl": True, "stratum+tls": True, "ssl": True}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pool address parsed from a ``stratum+tcp://`` or ``stratum+ssl://`` URL.

    ``url`` never carries credentials (it is shown and logged); a URL's own
    ``user:password@`` go to ``user`` and ``password`` and take precedence over the
    client's defaults for this pool.
    """

    url: str
    host: str
    port: int
    tls: bool
    user: str | None = field(default=None, compare=False)
    password: str | None = field(default=None, compare=False, repr=False)
    #: Where a ``client.reconnect`` sent us (shown in logs); the pool's URL otherwise.
    redirected_url: str | None = field(default=None, compare=False)

    @property
    def address(self) -> str:
        return self.redirected_url or self.url

    def redirected_to(self, host: str, port: int) -> Endpoint:
        """This pool reached at another address (where a ``client.reconnect`` sent us):
        the same URL, credentials and TLS."""
        address = f"{'stratum+ssl' if self.tls else 'stratum+tcp'}://{_host_text(host)}:{port}"
        return Endpoint(self.url, host, port, self.tls, self.user, self.password, address)


def split_pool_url(url: str) -> tuple[str, str | None, str | None, str]:
    """A pool URL taken apart by hand: (scheme, user, password, address).

    The credentials end at the last '@', so a password may hold '#', '/', '?', '@' or
    ':' as typed (urllib cuts it at the first of them and takes the rest for the host).
    ``scheme`` is "" when the URL has none; ``address`` is what follows the credentials
    (``host:port`` and anything after); user and password are as written, escapes kept.
    """
    text = url.strip()
    scheme, separator, rest = text.partition("://")
    if not separator or not scheme[:1].isalpha() or not all(c.isalnum() or c in "+-." for c in scheme):
        scheme, rest = "", text  # "user:pa://ss@host" has no scheme: its "://" is in the password
    userinfo, at, address = rest.rpartition("@")
    if not at:
        return scheme.lower(), None, None, rest
    user, colon, password = userinfo.partition(":")
    return scheme.lower(), user, password if colon else None, address


def redact_url(url: str, *, keep_user: bool = True, default_scheme: str = "") -> str:
    """A pool URL without the password written into it (``user:pass@host`` -> ``user@host``;
    without the user too when ``keep_user`` is False). The one rule for every URL shown.

    Split as :func:`split_pool_url` splits it (the last '@' ends the credentials), so a
    password holding '#', '/', '?' or '@' never shows, with or without a scheme."""
    scheme, user, _password, address = split_pool_url(url)
    scheme = scheme or default_scheme
    shown = f"{user}@{address}" if user and keep_user else address
    return f"{scheme}://{shown}" if scheme else shown


def _valid_host_name(host: str) -> bool:
    """A DNS name (labels of 1-63 characters, IDNA for non-ASCII) or an IPv4 address."""
    try:
        encoded = host.rstrip(".").encode("idna")
    except UnicodeError:
        return False
    labels = encoded.split(b".")
    return 0 < len(encoded) <= 253 and all(0 < len(label) <= 63 for label in labels)


def parse_pool_url(url: str) -> Endpoint:
    """Parse a pool URL; raises ConfigError naming what is wrong (never the password).

    Percent-escapes in the user and password are decoded (write a literal '%' as %25)."""
    scheme, user, password, address = split_pool_url(url)
    scheme = scheme or "stratum+tcp"
    shown = redact_url(url, keep_user=False, default_scheme=scheme)
    if scheme not in _SCHEMES:
        raise ConfigError(f"pool URL {shown!r}: scheme must be stratum+tcp:// or stratum+ssl://")
    host_port = address
    for mark in "/?#":  # a path, query or fragment means nothing to Stratum
        host_port = host_port.partition(mark)[0]
    if host_port.startswith("["):
        host, closed, after = host_port[1:].partition("]")
        if not closed:
            raise ConfigError(f"pool URL {shown!r}: an IPv6 address needs its closing ']', e.g. [::1]:3333")
        try:
            socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        except OSError:
            raise ConfigError(f"pool URL {shown!r}: {host!r} is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise ConfigError(f"pool URL {shown!r}: needs host:port")
        port_text = after[1:]
    else:
        host, _, port_text = host_port.partition(":")
        if ":" in port_text:
            # Perhaps credentials typed with ':' for '@' (u:pass:host:port): show none of it.
            raise ConfigError(f"pool URL {scheme}://...: more than one ':' in host:port; credentials go before "
                              "an '@' (user:password@host:port) and an IPv6 address in brackets ([::1]:3333)")
        if host and not _valid_host_name(host):
            raise ConfigError(f"pool URL {shown!r}: {host[:80]!r} is not a host name or address")
    if not host or not port_text or any(c.isspace() for c in host):
        raise ConfigError(f"pool URL {shown!r}: needs host:port")
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"pool URL {shown!r}: bad port {port_text[:12]!r} (1-65535)")
    return Endpoint(
        shown,
        host.lower(),
        port,
        _SCHEMES[scheme],
        unquote(user) if user else None,
        unquote(password) if password is not None else None,
    )


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
