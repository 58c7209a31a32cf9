"""The address a request is counted under in a per-IP limit."""

from __future__ import annotations

import ipaddress


def rate_limit_subject(client_ip: str | None) -> str:
    """The address a request is counted under: the IPv4 address, or an IPv6 /64 network.

    One IPv6 subscriber usually holds a whole /64 (2^64 addresses); counting each address
    alone would let one client multiply its limit at will.
    """
    if not client_ip:
        return "unknown"
    if ":" not in client_ip:
        return client_ip
    try:
        address = ipaddress.IPv6Address(client_ip)
    except ValueError:
        return client_ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))
