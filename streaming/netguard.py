"""Where Tempo may connect on someone else's say-so (issue 26): webhook receivers and network sources.

A rule's webhook URL or a camera URL given over the API is chosen by a client, not by the operator, and
the process that connects (a deliverer, an ingest job) may sit next to things the client must not reach.
The policy, one for every network destination:

- **always refused**: link-local addresses (169.254.0.0/16, fe80::/10: where clouds answer with
  instance credentials) and the cloud metadata names and addresses (`metadata.google.internal`,
  169.254.169.254, fd00:ec2::254, 100.100.100.200);
- **refused when the operator says so** (`deny_private=True`: `tempo serve --deny-private-networks`,
  or $TEMPO_DENY_PRIVATE_NETWORKS=1 for the CLI, workers and deliverers): loopback, private (RFC 1918,
  fc00::/7), carrier-grade NAT, unspecified (`0`, `0.0.0.0`, `::`), reserved and multicast addresses.
  LAN receivers (a home-automation hub, a video management system) are the common case, so they are
  allowed by default.

A name is checked by every address it resolves to, and the check is made again at connection time
(`resolve_checked` returns the addresses to connect to, so a name that changes its answer between the
check and the connection cannot slip through: callers connect to a checked address).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from tempo.errors import redact_url
from tempo.streaming.errors import DestinationRefusedError

# Names that answer with cloud instance metadata (credentials) from inside the cloud.
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped or -translated IPv6 address as the IPv4 address it stands for."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_class(address: IPAddress) -> str:
    """'metadata', 'link-local', 'private' (loopback, private, unspecified, reserved, multicast) or 'public'."""
    ip = _plain(address)
    if ip in METADATA_ADDRESSES or address in METADATA_ADDRESSES:
        return "metadata"
    if ip.is_link_local:
        return "link-local"
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
        or not ip.is_global
    ):
        return "private"
    return "public"


def _refusal(address: IPAddress, *, deny_private: bool) -> str | None:
    """Why `address` is refused, or None."""
    kind = address_class(address)
    if kind == "metadata":
        return "a cloud metadata address"
    if kind == "link-local":
        return "a link-local address"
    if kind == "private" and deny_private:
        return "a loopback, private or reserved address (private networks are denied)"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally ('[::1]', '127.1', '0', '2130706433' included), else None.

    The resolver reads shorthand IPv4 forms ('0', '127.1', a bare number) as addresses, so they are
    checked as the addresses they become, not as names.
    """
    host = host.strip().strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        packed = socket.inet_aton(host)  # the resolver's reading of '0', '127.1', '0x7f.1', '2130706433'
    except (OSError, ValueError):
        return None
    return ipaddress.IPv4Address(packed)


def check_host(host: str, *, deny_private: bool, what: str) -> IPAddress | None:
    """Refuse a host that is, by its spelling alone, a refused destination; its literal address or None.

    `what` names the URL in the sentence (already redacted)."""
    name = host.strip().lower().rstrip(".")
    if name in METADATA_NAMES or name.endswith(".metadata.google.internal"):
        raise DestinationRefusedError(f"{what} points at a cloud metadata service, which is never allowed")
    if deny_private and (name == "localhost" or name.endswith(".localhost")):
        raise DestinationRefusedError(
            f"{what} points at a loopback, private or reserved address (private networks are denied)"
        )
    literal = literal_address(name)
    if literal is not None:
        why = _refusal(literal, deny_private=deny_private)
        if why:
            raise DestinationRefusedError(f"{what} points at {why}")
    return literal


def refuse_metadata(host: str, *, what: str) -> None:
    """Refuse a cloud metadata destination by its spelling (name or literal address), whatever else the
    policy allows (a camera on a link-local address is common; the metadata service never is)."""
    name = host.strip().lower().rstrip(".")
    literal = literal_address(name)
    if (
        name in METADATA_NAMES
        or name.endswith(".metadata.google.internal")
        or (literal is not None and address_class(literal) == "metadata")
    ):
        raise DestinationRefusedError(f"{what} points at a cloud metadata service, which is never allowed")


def check_webhook_url(url: str, *, deny_private: bool) -> None:
    """Refuse a webhook URL ahead of delivery: by the spelling of its host, and by the addresses of a
    name that resolves now (one that does not may be known to the deliverer's resolver; the deliverer
    checks again at each delivery)."""
    host = urlsplit(url).hostname or ""
    what = repr(redact_url(url))
    if check_host(host, deny_private=deny_private, what=what) is None:
        resolve_checked(host, 0, deny_private=deny_private, what=what, unresolvable_ok=True)


def resolve_checked(
    host: str, port: int, *, deny_private: bool, what: str, unresolvable_ok: bool = False
) -> list[IPAddress]:
    """Every address `host` resolves to, each checked; DestinationRefusedError if any is refused (a
    name that resolves to one public and one private address is refused), or if it does not resolve
    (with `unresolvable_ok`: an empty list, for checks ahead of time on a name another machine may know)."""
    literal = check_host(host, deny_private=deny_private, what=what)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        if unresolvable_ok:
            return []
        raise DestinationRefusedError(f"the host of {what} does not resolve") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = _refusal(address, deny_private=deny_private)
        if why:
            raise DestinationRefusedError(f"{what} resolves to {why}")
        if address not in addresses:
            addresses.append(address)
    return addresses
