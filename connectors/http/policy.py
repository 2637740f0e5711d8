"""Which network addresses the hub may fetch from: the guard against server-side request forgery.

A manifest names a URL; without a guard, a department (or anyone who can register a
manifest) could make the hub fetch ``http://169.254.169.254/`` (a cloud's metadata
service), ``http://127.0.0.1:3000/`` (the hub's own UI) or a host on the city's
internal network, and publish what it returns. So before every connection, the first
and each redirect's, the URL is checked:

- only ``http`` and ``https``; ``file://``, ``ftp://`` and the rest are refused;
- the host is resolved and **every** address it resolves to must be public, unless the
  hub configuration allows it: ``http.allow_hosts`` lists host names, IP addresses or
  CIDR ranges, and ``http.allow_private: true`` allows the private ranges (10/8,
  172.16/12, 192.168/16, fc00::/7) but never loopback or link-local;
- the connection then goes to the address that was checked (never resolved again), so
  a DNS answer that changes between the check and the connection cannot slip past it.

>>> NetworkPolicy().refusal("http://10.0.0.1/data.csv", ["10.0.0.1"])
'10.0.0.1 is a private address'
>>> NetworkPolicy(allow_hosts=("10.0.0.0/8",)).refusal("http://10.0.0.1/data.csv", ["10.0.0.1"]) is None
True
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass, field

from twinhub.connectors.errors import SourceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
_HINT = "; list the host under http.allow_hosts in twinhub.yaml if the hub should reach it (HTTP and database sources)"


class NetworkRefused(SourceError):
    """The policy refuses a URL; the message says why and how to allow it."""


def redact(url: str) -> str:
    """The URL as it may appear in messages: no user or password, query values elided.

    >>> redact("https://user:pw@example.org/q?token=s3cret&f=json#x")
    'https://example.org/q?token=…&f=…'
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if _port(parts) else "")
    names = [name for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    query = "&".join(f"{n}=…" for n in names)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


# IPv6 ranges that carry an IPv4 address inside them: a packet to one of these can end at that IPv4
# address (a NAT64 gateway, a 6to4 relay, a Teredo server), so the embedded address is what counts
NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
TEREDO = ipaddress.IPv6Network("2001::/32")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated), and :: and ::1 themselves


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition address leads to, and the mechanism's name; None if none.

    >>> embedded_ipv4(ipaddress.IPv6Address("2002:7f00:1::"))
    ('6to4', IPv4Address('127.0.0.1'))
    """
    value = int(ip)
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in IPV4_COMPATIBLE and value > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if any(ip in net for net in NAT64):
        return "NAT64", ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in SIX_TO_FOUR:
        return "6to4", ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    if ip in TEREDO:  # the client's address is stored inverted in the last 32 bits
        return "Teredo", ipaddress.IPv4Address(~value & 0xFFFFFFFF)
    return None


def _plain_kind(ip: IPAddress) -> str | None:
    if ip.is_unspecified:  # 0.0.0.0 and :: reach the machine itself
        return "loopback (unspecified)"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private and not ip.is_reserved:
        return "private"
    return None if ip.is_global else "reserved"


def address_kind(ip: IPAddress) -> str | None:
    """None for a public address, else what it is: loopback, link-local, private, multicast, reserved...

    An IPv6 address embedding an IPv4 one (IPv4-compatible, NAT64, 6to4, Teredo) is never public
    by itself: it is named with what it embeds (``6to4 address leading to 10.0.0.1 (private)``)
    and refused unless allowed in twinhub.yaml, like any non-public address. IPv4-mapped
    addresses (``::ffff:127.0.0.1``) are the IPv4 address itself.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            how, v4 = embedded
            if how == "IPv4-mapped":  # the socket layer connects to the IPv4 address itself
                return _plain_kind(v4)
            return f"{how} address leading to {v4} ({_plain_kind(v4) or 'public'})"
    return _plain_kind(ip)


def _noun(kind: str) -> str:
    """``a loopback address``, ``an IPv4-compatible address leading to ...``."""
    phrase = kind if " address" in kind else f"{kind} address"
    return ("an " if phrase[0] in "aeiouI" else "a ") + phrase


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    """A URL checked against the policy: connect to ``ip``, speak to ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str
    path: str  # path and query, as sent in the request line

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


@dataclass(frozen=True)
class NetworkPolicy:
    """Hosts beyond the public internet the hub may fetch from (``http:`` in twinhub.yaml)."""

    allow_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = []
        for entry in self.allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue  # a host name
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def from_config(cls, data: object) -> NetworkPolicy:
        """The policy from the ``http`` mapping of twinhub.yaml; ValueError names a bad key."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("http: expected a mapping with allow_hosts and allow_private")
        unknown = sorted(set(data) - {"allow_hosts", "allow_private"})
        if unknown:
            raise ValueError(f"http.{unknown[0]}: unknown key (use allow_hosts, allow_private)")
        hosts = data.get("allow_hosts") or []
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
            raise ValueError("http.allow_hosts: expected a list of host names, IP addresses or CIDR ranges")
        private = data.get("allow_private", False)
        if not isinstance(private, bool):
            raise ValueError("http.allow_private: expected true or false")
        return cls(tuple(h.strip().lower() for h in hosts), private)

    def _host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts

    def _ip_allowed(self, host: str, ip: IPAddress) -> bool:
        kind = address_kind(ip)
        if kind is None or self._host_allowed(host) or any(ip in net for net in self._networks):
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in net for net in self._networks):
            return True  # ::ffff:127.0.0.1 is the listed 127.0.0.1
        return kind == "private" and self.allow_private

    def refusal(self, url: str, addresses: list[str]) -> str | None:
        """Why ``url``, whose host resolves to ``addresses``, may not be fetched; None if it may."""
        host = urllib.parse.urlsplit(url).hostname or ""
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            if not self._ip_allowed(host, ip):
                what = _noun(address_kind(ip) or "")
                if _literal(host) == ip:
                    return f"{ip} is {what}"
                return f"{host} resolves to {ip}, {what}"
        return None

    def check(self, url: str) -> Target:
        """The URL's target if the policy allows it; NetworkRefused before any connection otherwise."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise NetworkRefused(f"refused {redact(url)!r}: only http and https URLs are fetched, not {scheme or 'a bare path'}")
        if parts.username or parts.password:
            raise NetworkRefused(
                f"refused {redact(url)}: the URL carries a user name or password; "
                "give credentials through source.headers_env or source.params_env instead"
            )
        host = parts.hostname
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            host = None
        if not host:
            raise NetworkRefused(f"refused {redact(url)}: not a valid host and port; check source.url")
        addresses = self.resolve(host, port, url)
        reason = self.refusal(url, addresses)
        if reason:
            raise NetworkRefused(f"refused {redact(url)}: {reason}{_HINT}")
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        return Target(url=url, scheme=scheme, host=host, port=port, ip=addresses[0].split("%", 1)[0], path=path)

    def check_host(self, host: str, port: int, what: str) -> str:
        """The address to connect to for a database host, checked as a URL's host is; NetworkRefused otherwise.

        ``what`` names the source in messages (``postgres source user@host:5432/db``).
        """
        literal = _literal(host)
        netloc = f"[{host}]" if literal is not None and literal.version == 6 else host
        url = f"db://{netloc}:{port}/"
        addresses = self.resolve(host, port, url)
        reason = self.refusal(url, addresses)
        if reason:
            raise NetworkRefused(f"{what}: refused source.host {host}: {reason}{_HINT}")
        return addresses[0].split("%", 1)[0]

    @staticmethod
    def resolve(host: str, port: int, url: str) -> list[str]:
        """Every address ``host`` resolves to (an IP literal is its own address, no lookup)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise NetworkRefused(f"cannot resolve the host of {redact(url)}: {exc}; check source.url") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
