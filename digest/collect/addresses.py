"""The SSRF guard: which IP addresses a source may be fetched from.

A source URL comes from the operator, but redirects and DNS answers come from strangers.
Without a guard, a feed that redirects to `http://169.254.169.254/` would hand us the
cloud metadata service, and a host name that resolves to 127.0.0.1 our own admin pages.
`check_address` refuses every address that is not publicly routable, unless the
operator exempted its network with `[collect] allow_networks`.

Python's `ip.is_global` alone is not enough: NAT64 `64:ff9b::a9fe:a9fe` reports global
although it reaches 169.254.169.254, and the tables behind `is_global` change between
Python releases. So the refused ranges are spelled out here (from the IANA special-purpose
address registries), and IPv4 addresses hidden inside IPv6 ones are taken out and judged
as IPv4.

The guard is enforced where the socket is opened: `GuardedTransport` (the default
transport of `fetch.Fetcher`) resolves each host once, checks every address, and connects
to the checked address, on the first request and on every redirect hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence

import httpcore
import httpx

from digest.collect.networks import Network
from digest.errors import BlockedAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _table(*rows: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in rows)


# IANA IPv4 Special-Purpose Address Registry: none of these is where a public feed lives.
_REFUSED_V4 = _table(
    ("0.0.0.0/8", 'a "this network" address (RFC 1122)'),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata services live here)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.0.0.0/24", "an IETF protocol assignment (RFC 6890)"),
    ("192.0.2.0/24", "a documentation address (RFC 5737)"),
    ("192.88.99.0/24", "a deprecated 6to4 relay address (RFC 7526)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("198.18.0.0/15", "a benchmarking address (RFC 2544)"),
    ("198.51.100.0/24", "a documentation address (RFC 5737)"),
    ("203.0.113.0/24", "a documentation address (RFC 5737)"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved or broadcast address (RFC 1112)"),
)

# IANA IPv6 Special-Purpose Address Registry, narrowest first (the first match names the
# reason). The ranges that embed an IPv4 address (mapped, well-known NAT64, 6to4, Teredo)
# are not here: they are unwrapped first.
_REFUSED_V6 = _table(
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    # Local-use NAT64 (RFC 8215) may embed the IPv4 address at any prefix length, so we
    # cannot tell which one it reaches; by definition it is never public.
    ("64:ff9b:1::/48", "a local-use NAT64 address (RFC 8215)"),
    ("::/8", "a reserved address (IPv4-compatible and translated forms live here)"),
    ("100::/64", "a discard-only address (RFC 6666)"),
    ("2001::/23", "an IETF protocol assignment (RFC 2928)"),
    ("2001:db8::/32", "a documentation address (RFC 3849)"),
    ("3fff::/20", "a documentation address (RFC 9637)"),
    ("5f00::/16", "a segment routing address (RFC 9602)"),
    ("fc00::/7", "a unique local address (RFC 4193)"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a deprecated site-local address (RFC 3879)"),
    ("ff00::/8", "a multicast address"),
)

# Everything public in IPv6 is inside 2000::/3 (RFC 4291); the rest is unassigned.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def check_address(ip: str, allow: Sequence[Network]) -> None:
    """Raise BlockedAddressError unless `ip` is publicly routable or inside an allowed network."""
    address = ipaddress.ip_address(ip)
    refusal = _refusal(address, allow)
    if refusal is None:
        return
    reason, culprit = refusal
    example = f"{culprit}/{culprit.max_prefixlen}"
    raise BlockedAddressError(
        f"{ip} is {reason}, which the SSRF guard refuses; if this source really lives "
        f'there, add its network to [collect] allow_networks (e.g. "{example}")'
    )


def _refusal(address: IPAddress, allow: Sequence[Network]) -> tuple[str, IPAddress] | None:
    """Return why `address` is refused and which address to allow-list, or None if it is fine."""
    if any(address in network for network in allow):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        hidden = _embedded_ipv4(address)
        for label, embedded in hidden:
            inner = _refusal(embedded, allow)
            if inner is not None:
                reason, culprit = inner
                return f"{label} {embedded}, {reason}", culprit
        if hidden:
            # The IPv6 wrapper only carries the packet; where it lands is what matters.
            return None
        table = _REFUSED_V6
    else:
        table = _REFUSED_V4
    for network, reason in table:
        if address in network:
            return reason, address
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "outside the IPv6 global unicast range 2000::/3", address
    # A backstop for ranges registered after this table was written.
    if not address.is_global:
        return "not a globally routable address", address
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """Return the IPv4 addresses an IPv6 address reaches, labelled by how they are embedded."""
    if address.ipv4_mapped is not None:
        return [("the IPv4-mapped form of", address.ipv4_mapped)]
    if address in _NAT64_WELL_KNOWN:
        return [("the NAT64 form of", ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))]
    if address.sixtofour is not None:
        return [("the 6to4 form of", address.sixtofour)]
    if address.teredo is not None:
        server, client = address.teredo
        # Teredo traffic goes through the server to the client: both must be public.
        return [("a Teredo address for client", client), ("a Teredo address via server", server)]
    return []


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve a host once, refuse it unless every address passes the guard, connect by IP.

    Connecting to the address we checked (not the name) means a DNS answer that changes
    between check and connect (DNS rebinding) cannot slip past. TLS still verifies the
    host name: httpcore passes the URL's host to `start_tls` as `server_hostname`.
    """

    def __init__(self, allow: Sequence[Network]) -> None:
        self._allow = tuple(allow)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a TCP connection to the first reachable checked address of `host`."""
        addresses = await self._resolve(host, port, timeout)
        for ip in addresses:
            try:
                check_address(ip, self._allow)
            except BlockedAddressError as exc:
                if ip == host:
                    raise
                raise BlockedAddressError(f"{host} resolves to {ip}, and {exc}") from exc
        failure: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    ip, port, timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc  # try the host's next address, as browsers do
        raise failure or httpcore.ConnectError(f"{host} has no address")

    async def sleep(self, seconds: float) -> None:
        """Sleep between connection retries."""
        await self._inner.sleep(seconds)

    @staticmethod
    async def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout}s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve host name {host} ({exc})") from exc
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, connecting only through `GuardedBackend`."""

    def __init__(self, allow: Sequence[Network]) -> None:
        super().__init__(trust_env=False)
        # httpx has no public way to choose httpcore's network backend, so the pool the
        # parent built (still empty: no connection exists yet) is replaced by the same
        # pool over our backend. Proxies are out of the question: a proxy would connect
        # for us and the guard would never see the address.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow),
        )
