"""Who may use the API, and who may change the miner: cgminer's ``--api-allow``.

Syntax (cgminer's API-README): a comma-separated list of addresses or networks, each
optionally prefixed ``W:`` (privileged: every command, including those that change the
miner) or ``R:`` (report commands only, the same as no prefix)::

    W:127.0.0.1,192.168.1.0/24,10.0.0/24,W:::1,0/0

* An address without a prefix length is a single host (``/32``, or ``/128`` for IPv6).
* cgminer pads a short IPv4 address with ``.0``: ``10.0.0/24`` is ``10.0.0.0/24``.
* ``0/0`` means every address (IPv4 and IPv6).
* The first entry that matches decides; an address that matches none is not served.
* With no list at all, only the loopback addresses are served, read-only.

Other cgminer group letters (``--api-groups``) are not supported and are an error.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hashcore.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AllowEntry:
    network: IPNetwork
    write: bool


@dataclass(frozen=True, slots=True)
class Access:
    """What one client may do."""

    write: bool


READ_ONLY = Access(write=False)
PRIVILEGED = Access(write=True)


class AllowList:
    """Parsed ``--api-allow``; :meth:`lookup` gives a peer's access, None when refused."""

    def __init__(self, entries: list[AllowEntry]) -> None:
        self.entries = entries

    @classmethod
    def parse(cls, spec: str | None) -> AllowList:
        """Parse cgminer's syntax; None or an empty string is the loopback-only default."""
        if spec is None or not spec.strip():
            return cls.default()
        entries = [entry for item in spec.split(",") if item.strip() for entry in _parse_entry(item.strip())]
        if not entries:
            raise ConfigError(f"--api-allow {spec!r}: no address given")
        return cls(entries)

    @classmethod
    def default(cls) -> AllowList:
        return cls([
            AllowEntry(ipaddress.ip_network("127.0.0.1/32"), write=False),
            AllowEntry(ipaddress.ip_network("::1/128"), write=False),
        ])

    def lookup(self, address: str) -> Access | None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        for entry in self.entries:
            if ip.version == entry.network.version and ip in entry.network:
                return PRIVILEGED if entry.write else READ_ONLY
        return None

    def describe(self) -> str:
        return ",".join(f"{'W:' if e.write else ''}{e.network}" for e in self.entries)


def _parse_entry(item: str) -> list[AllowEntry]:
    if len(item) > 2 and item[1] == ":" and item[0].isalpha():
        networks = _networks(item[2:])
        # "a::1" is an IPv6 address, not group "a" and ":1".
        if networks is not None or _networks(item) is None:
            group = item[0].upper()
            if group not in "RW":
                raise ConfigError(f"--api-allow {item!r}: only the W: (write) and R: (read) groups are supported")
            if networks is None:
                raise ConfigError(f"--api-allow {item!r}: not an IPv4 or IPv6 address or network")
            return [AllowEntry(n, group == "W") for n in networks]
    networks = _networks(item)
    if networks is None:
        raise ConfigError(f"--api-allow {item!r}: not an IPv4 or IPv6 address or network")
    return [AllowEntry(n, False) for n in networks]


def _networks(text: str) -> list[IPNetwork] | None:
    if text == "0/0":
        return [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    address, slash, prefix = text.partition("/")
    if ":" not in address:
        octets = address.split(".")
        if not 1 <= len(octets) <= 4 or not all(o.isdigit() for o in octets):
            return None
        address = ".".join(octets + ["0"] * (4 - len(octets)))
    try:
        network = ipaddress.ip_network(f"{address}/{prefix}" if slash else address, strict=False)
    except ValueError:
        return None
    mapped = network.network_address.ipv4_mapped if isinstance(network, ipaddress.IPv6Network) else None
    if mapped is not None and network.prefixlen >= 96:
        # ::ffff:a.b.c.d is how a dual-stack socket shows an IPv4 client, which lookup() compares as IPv4.
        return [ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")]
    return [network]
