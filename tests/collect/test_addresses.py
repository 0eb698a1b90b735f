"""The SSRF guard: which addresses a source may be fetched from."""

from __future__ import annotations

import pytest

from digest.collect.addresses import check_address
from digest.collect.networks import parse_networks
from digest.errors import BlockedAddressError

# (address, allowed with an empty allow list, what the refusal says)
CASES = [
    ("8.8.8.8", True, ""),
    ("1.1.1.1", True, ""),
    ("2606:4700::1111", True, ""),
    ("2a00:1450:4001:80b::200e", True, ""),
    ("127.0.0.1", False, "loopback"),
    ("127.255.255.254", False, "loopback"),
    ("10.1.2.3", False, "private"),
    ("172.16.0.1", False, "private"),
    ("192.168.1.1", False, "private"),
    ("169.254.169.254", False, "link-local"),
    ("100.64.0.1", False, "carrier-grade NAT"),
    ("0.0.0.0", False, "this network"),
    ("224.0.0.1", False, "multicast"),
    ("240.0.0.1", False, "reserved"),
    ("255.255.255.255", False, "broadcast"),
    ("198.18.0.1", False, "benchmarking"),
    ("192.0.2.1", False, "documentation"),
    ("203.0.113.7", False, "documentation"),
    ("::", False, "unspecified"),
    ("::1", False, "loopback"),
    ("fd00::1", False, "unique local"),
    ("fe80::1", False, "link-local"),
    ("ff02::1", False, "multicast"),
    ("2001:db8::1", False, "documentation"),
    ("::7f00:1", False, "reserved"),  # IPv4-compatible ::127.0.0.1
    ("::ffff:127.0.0.1", False, "IPv4-mapped form of 127.0.0.1"),
    ("::ffff:169.254.169.254", False, "IPv4-mapped form of 169.254.169.254"),
    ("::ffff:8.8.8.8", True, ""),
    ("64:ff9b::a9fe:a9fe", False, "NAT64 form of 169.254.169.254"),
    ("64:ff9b::7f00:1", False, "NAT64 form of 127.0.0.1"),
    ("64:ff9b::808:808", True, ""),
    ("64:ff9b:1::a9fe:a9fe", False, "local-use NAT64"),
    ("2002:7f00:0001::", False, "6to4 form of 127.0.0.1"),
    ("2002:a9fe:a9fe::1", False, "6to4 form of 169.254.169.254"),
    ("2002:808:808::1", True, ""),
    ("2001:0000:4136:e378:8000:63bf:3fff:fdd2", False, "Teredo address for client 192.0.2.45"),
]


@pytest.mark.parametrize(("ip", "allowed", "reason"), CASES)
def test_guard_refuses_everything_not_publicly_routable(
    ip: str, allowed: bool, reason: str
) -> None:
    if allowed:
        check_address(ip, ())
        return
    with pytest.raises(BlockedAddressError) as caught:
        check_address(ip, ())
    message = str(caught.value)
    assert message.startswith(f"{ip} is ")
    assert reason in message
    assert "[collect] allow_networks" in message


def test_nat64_of_metadata_address_is_refused_although_python_calls_it_global() -> None:
    import ipaddress

    assert ipaddress.ip_address("64:ff9b::a9fe:a9fe").is_global  # the trap the guard avoids
    with pytest.raises(BlockedAddressError, match=r'"169\.254\.169\.254/32"'):
        check_address("64:ff9b::a9fe:a9fe", ())


@pytest.mark.parametrize(
    "ip", ["127.0.0.1", "127.8.9.10", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"]
)
def test_allow_networks_exempts_a_network_and_its_ipv6_disguises(ip: str) -> None:
    check_address(ip, parse_networks(["127.0.0.0/8"]))


@pytest.mark.parametrize("ip", ["10.0.0.1", "169.254.169.254", "::1", "fd00::1"])
def test_allow_networks_exempts_nothing_else(ip: str) -> None:
    with pytest.raises(BlockedAddressError):
        check_address(ip, parse_networks(["127.0.0.0/8"]))


def test_allow_networks_takes_ipv6_networks_and_single_addresses() -> None:
    allow = parse_networks(["fd00::/8", "192.168.1.20"])
    check_address("fd12:3456::1", allow)
    check_address("192.168.1.20", allow)
    with pytest.raises(BlockedAddressError):
        check_address("192.168.1.21", allow)


def test_parse_networks_returns_networks() -> None:
    networks = parse_networks(["127.0.0.0/8", " ::1/128 "])
    assert [str(n) for n in networks] == ["127.0.0.0/8", "::1/128"]
    assert parse_networks([]) == ()


@pytest.mark.parametrize(
    ("cidr", "hint"),
    [
        ("10.0.0.1/8", 'did you mean "10.0.0.0/8"?'),
        ("localhost", "is not a network"),
        ("300.1.1.1/8", "is not a network"),
        ("10.0.0.0/33", "is not a network"),
    ],
)
def test_parse_networks_names_the_bad_cidr(cidr: str, hint: str) -> None:
    with pytest.raises(ValueError, match="is not a network") as caught:
        parse_networks(["127.0.0.0/8", cidr])
    assert repr(cidr) in str(caught.value)
    assert hint in str(caught.value)
