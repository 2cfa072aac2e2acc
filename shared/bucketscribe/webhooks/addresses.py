"""Which addresses a webhook may be sent to: public ones only (server-side request forgery).

A profile's webhook URL is written by whoever writes the profiles, and a receiver may redirect;
either could point the deployment at what only it can reach: the cloud's metadata service (which
hands out the function's credentials), the VPC's databases, the local host. So every address a
host name resolves to is checked after resolution, and the connection then goes to the checked
address itself, never to a second resolution of the name (a name that answers a public address
to the check and a private one to the connection gets nowhere).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from bucketscribe.ports.webhooks import WebhookRefused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""(host, port) → every address the host resolves to, as text."""

# The metadata services of the clouds and their containers, named so the refusal says what it is
# (each is also outside the public address space, which alone refuses it).
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"): "the instance metadata service",
    ipaddress.ip_address("169.254.170.2"): "the container metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "the instance metadata service",
    ipaddress.ip_address("100.100.100.200"): "the instance metadata service",
}


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"{host} does not resolve ({error.strerror})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def why_not_public(address: IpAddress) -> str | None:
    """Why a webhook may not go to ``address``; ``None`` when it is a public unicast address."""
    if address in METADATA_ADDRESSES:
        return METADATA_ADDRESSES[address]
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one is judged as itself.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return why_not_public(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if not address.is_global:
        return "a private or reserved address"
    return None


def checked_addresses(host: str, port: int, *, allow_private: bool, resolve: Resolver) -> list[str]:
    """The addresses ``host`` resolves to, each allowed; ``WebhookRefused`` when any one is not
    (a name with one private address among public ones is refused: which one a connection would
    get is not ours to choose)."""
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if allow_private:
        return addresses
    for text in addresses:
        reason = why_not_public(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason is not None:
            shown = text if text == host else f"{host} resolves to {text}"
            raise WebhookRefused(
                f"refused: {shown}, {reason}; webhooks go to public addresses only "
                "(BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE=true allows others)"
            )
    return addresses
