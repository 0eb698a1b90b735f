"""Networks written in the settings ("127.0.0.0/8", "fd00::/8"): parsed here, without the
HTTP stack, so that reading the settings does not load httpx (the SSRF guard in
`addresses` uses them)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parse allow-list CIDRs ("127.0.0.0/8", "fd00::/8", an IP); ValueError names a bad one."""
    networks: list[Network] = []
    for cidr in cidrs:
        text = cidr.strip()
        try:
            networks.append(ipaddress.ip_network(text))
        except ValueError as exc:
            hint = ""
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                pass
            else:
                hint = f'; did you mean "{loose}"?'
            raise ValueError(
                f'{cidr!r} is not a network like "127.0.0.0/8" or "fd00::/8" ({exc}){hint}'
            ) from exc
    return tuple(networks)
