"""Server-side request forgery: webhook URLs may not reach loopback, private or link-local addresses.

A URL is checked when a webhook is created or changed, and again at every
attempt: its host is resolved, every address it resolves to is checked, and the
request goes to the checked address itself (the URL's host stays in `Host` and
in TLS's server name), so a name that resolves elsewhere a moment later (DNS
rebinding) cannot redirect the connection. `COCO_WEBHOOK_ALLOW_PRIVATE=true`
lifts the rule (a receiver on the same host or network, tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL is not one the server will call (a message for the user)."""


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL with the checked address as its host, and what keeps the name."""

    url: str
    host_header: str
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    scheme: str
    host: str
    port: int
    netloc: str
    path: str
    query: str


def parse(url: str) -> Parsed:
    """The parts of an absolute http(s) URL, or Refused naming what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise Refused(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("the URL may not carry a user name or password (sign with the webhook's secret instead)")
    if parts.fragment:
        raise Refused("the URL may not have a #fragment")
    return Parsed(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        netloc=parts.netloc,
        path=parts.path or "/",
        query=parts.query,
    )


def forbidden(address: IPAddress) -> str | None:
    """Why the address may not be called, or None when it is a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "the unspecified address (which reaches this host)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "not a public address"
    return None


async def resolve(parsed: Parsed, *, allow_private: bool) -> IPAddress:
    """The address to connect to: the host's first address, once every address it has passed the check."""
    try:
        literal = ipaddress.ip_address(parsed.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                parsed.host, parsed.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as error:
            raise Refused(f"cannot resolve {parsed.host}: {error}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found))
        if not addresses:
            raise Refused(f"{parsed.host} has no address")
    if not allow_private:
        for address in addresses:
            reason = forbidden(address)
            if reason is not None:
                shown = parsed.host if literal is not None else f"{parsed.host} resolves to {address}, which"
                raise Refused(
                    f"{shown} is {reason}; webhooks may call only public addresses "
                    "(COCO_WEBHOOK_ALLOW_PRIVATE=true allows others)"
                )
    return addresses[0]


async def check(url: str, *, allow_private: bool) -> None:
    """Refused unless `url` is an http(s) URL whose host resolves to addresses the server may call."""
    await resolve(parse(url), allow_private=allow_private)


async def target(url: str, *, allow_private: bool) -> Target:
    """Resolve and check `url` for one attempt: the request goes to the address checked here."""
    parsed = parse(url)
    address = await resolve(parsed, allow_private=allow_private)
    host = f"[{address}]" if address.version == 6 else str(address)
    connect_to = urlunsplit((parsed.scheme, f"{host}:{parsed.port}", parsed.path, parsed.query, ""))
    # No user information is allowed, so the URL's authority is exactly the Host header it implies.
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return Target(connect_to, parsed.netloc, extensions)
