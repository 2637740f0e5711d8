"""Finding 14 (network policy): IPv6 transition addresses, multicast, unspecified and reserved
addresses are refused unless twinhub.yaml allows them.

``::127.0.0.1``, NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo (``2001::/32``) addresses
carry an IPv4 address that a gateway or relay delivers to, and multicast passed as "global".
Only IP literals here: nothing is resolved and nothing is fetched.
"""

from __future__ import annotations

import pytest

from twinhub.connectors import NetworkPolicy, SourceError

# (id, address, the refusal says)
REFUSED = [
    ("ipv4-compatible-loopback", "::127.0.0.1", "IPv4-compatible address leading to 127.0.0.1 (loopback)"),
    ("ipv4-compatible-private", "::10.0.0.1", "IPv4-compatible address leading to 10.0.0.1 (private)"),
    ("ipv4-mapped-loopback", "::ffff:127.0.0.1", "a loopback address"),
    ("ipv4-mapped-metadata", "::ffff:169.254.169.254", "a link-local address"),
    ("nat64-loopback", "64:ff9b::7f00:1", "NAT64 address leading to 127.0.0.1 (loopback)"),
    ("nat64-private", "64:ff9b::a00:1", "NAT64 address leading to 10.0.0.1 (private)"),
    ("nat64-metadata", "64:ff9b::a9fe:a9fe", "NAT64 address leading to 169.254.169.254 (link-local)"),
    ("nat64-local-use-prefix", "64:ff9b:1::c0a8:101", "NAT64 address leading to 192.168.1.1 (private)"),
    ("nat64-of-public-needs-allowing", "64:ff9b::808:808", "NAT64 address leading to 8.8.8.8 (public)"),
    ("6to4-loopback", "2002:7f00:1::", "6to4 address leading to 127.0.0.1 (loopback)"),
    ("6to4-private", "2002:c0a8:101::1", "6to4 address leading to 192.168.1.1 (private)"),
    ("teredo-loopback-client", "2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo address leading to 127.0.0.1 (loopback)"),
    ("teredo-private-client", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo address leading to 10.0.0.1 (private)"),
    ("multicast-v6", "ff02::1", "a multicast address"),
    ("multicast-v6-global-scope", "ff0e::1", "a multicast address"),
    ("multicast-v4", "224.0.0.1", "a multicast address"),
    ("multicast-v4-global", "233.252.0.1", "a multicast address"),
    ("unspecified-v6", "::", "loopback (unspecified)"),
    ("unspecified-v4", "0.0.0.0", "loopback (unspecified)"),
    ("reserved-v4", "240.0.0.1", "a reserved address"),
    ("broadcast-v4", "255.255.255.255", "address"),
    ("documentation-v6", "2001:db8::1", "address"),
]


def url(address: str) -> str:
    return f"http://[{address}]:8080/data.geojson" if ":" in address else f"http://{address}:8080/data.geojson"


@pytest.mark.parametrize(("address", "says"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_the_http_policy_refuses_the_address(address, says):
    with pytest.raises(SourceError) as info:
        NetworkPolicy().check(url(address))
    assert f"is {says}" in str(info.value) or says in str(info.value), str(info.value)
    assert "http.allow_hosts" in str(info.value)


@pytest.mark.parametrize(("address", "says"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_database_hosts_are_judged_the_same(address, says):
    with pytest.raises(SourceError, match="refused source.host"):
        NetworkPolicy().check_host(address, 5432, "postgres source")


# (id, address, policy): allowed, checked without connecting
ALLOWED = [
    ("public-v4", "8.8.8.8", NetworkPolicy()),
    ("public-v6", "2606:4700:4700::1111", NetworkPolicy()),
    ("listed-nat64-prefix", "64:ff9b::808:808", NetworkPolicy(allow_hosts=("64:ff9b::/96",))),
    ("listed-v4-through-mapped", "::ffff:127.0.0.1", NetworkPolicy(allow_hosts=("127.0.0.1",))),
]


@pytest.mark.parametrize(("address", "policy"), [pytest.param(*c[1:], id=c[0]) for c in ALLOWED])
def test_public_and_listed_addresses_pass(address, policy):
    assert policy.check(url(address)).port == 8080


def test_allow_private_does_not_allow_a_transition_address_of_a_private_one():
    with pytest.raises(SourceError, match="6to4 address leading to 10.0.0.1"):
        NetworkPolicy(allow_private=True).check(url("2002:a00:1::"))
