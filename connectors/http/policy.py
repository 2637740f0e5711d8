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
_HINT = "; list the host under http.allow_hosts in twinhub.yaml if the hub should reach it"


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


def address_kind(ip: IPAddress) -> str | None:
    """None for a public address, else what it is: loopback, link-local, private or reserved."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback or ip.is_unspecified:  # 0.0.0.0 reaches the machine itself
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private and not ip.is_reserved:
        return "private"
    return None if ip.is_global else "reserved"


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
        return kind == "private" and self.allow_private

    def refusal(self, url: str, addresses: list[str]) -> str | None:
        """Why ``url``, whose host resolves to ``addresses``, may not be fetched; None if it may."""
        host = urllib.parse.urlsplit(url).hostname or ""
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            if not self._ip_allowed(host, ip):
                if host == str(ip):
                    return f"{ip} is a {address_kind(ip)} address"
                return f"{host} resolves to {ip}, a {address_kind(ip)} address"
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

    @staticmethod
    def resolve(host: str, port: int, url: str) -> list[str]:
        """Every address ``host`` resolves to (an IP literal is its own address, no lookup)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise NetworkRefused(f"cannot resolve the host of {redact(url)}: {exc}; check source.url") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
