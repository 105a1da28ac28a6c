"""Where webhooks may point: the operator's allow-list, checked when a subscription is made
and again, on the resolved address, before every attempt (a name that resolved to a public
address yesterday may resolve to 127.0.0.1 today: DNS rebinding).

Rules: only http and https, no credentials in the URL. An IP literal must lie in a listed
CIDR. A listed host name (`hooks.example.com`, or `*.example.com` for its subdomains) may
resolve to public addresses; a private, loopback, link-local or otherwise special address
is admitted only when a listed CIDR holds it. An unlisted name is admitted only for the
addresses listed CIDRs hold. An empty list admits nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
SETTING = "LORAPLANE_WEBHOOK_ALLOWED_HOSTS"


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


@dataclass(frozen=True)
class AllowList:
    """LORAPLANE_WEBHOOK_ALLOWED_HOSTS, parsed once: names, `*.` suffixes and networks."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Each entry a host name, `*.domain`, an IP address or a CIDR; ValueError otherwise."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*.") and _HOST_NAME.match(entry[2:]):
                suffixes.append(entry[1:].rstrip("."))
            elif _HOST_NAME.match(entry):
                names.add(entry.rstrip("."))
            else:
                raise ValueError(f"{SETTING}: {raw!r} is neither a host name, `*.domain`, "
                                 "an IP address nor a CIDR")
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    @property
    def empty(self) -> bool:
        return not (self.names or self.suffixes or self.networks)

    def names_host(self, host: str) -> bool:
        """The host name is listed (exactly, or under a `*.` entry)."""
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def admits(self, address: Address, *, named: bool) -> bool:
        """An address may be called: a listed CIDR holds it, or it is a public address of a
        listed name."""
        address = _address(str(address)) or address
        if any(address.version == n.version and address in n for n in self.networks):
            return True
        return named and address.is_global


@dataclass(frozen=True)
class Target:
    """A webhook URL, parsed: what to connect to and what to send as Host and SNI."""

    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    path: str  # path and query, at least "/"

    @property
    def literal(self) -> Address | None:
        return _address(self.host)

    def url_for(self, address: Address) -> str:
        """The URL with its host replaced by a checked address (no second DNS lookup)."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """The URL as a target; 422 `invalid_webhook_url` for anything but a plain http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"webhook url {url!r} is not a valid URL: {exc}",
                             code="invalid_webhook_url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"webhook url {url!r}: only http and https URLs are allowed",
                             code="invalid_webhook_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(f"webhook url {url!r}: credentials in the URL are not allowed",
                             code="invalid_webhook_url")
    host = (parts.hostname or "").lower()
    if not host or not (_address(host) or _HOST_NAME.match(host)):
        raise InvalidRequest(f"webhook url {url!r} has no valid host",
                             code="invalid_webhook_url")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=url.strip(), scheme=scheme, host=host.rstrip("."),
                  port=port or (443 if scheme == "https" else 80), path=path)


def _unique(infos: list) -> list[Address]:
    seen: list[Address] = []
    for info in infos:
        address = _address(info[4][0].split("%")[0])
        if address is not None and address not in seen:
            seen.append(address)
    return seen


def resolve(target: Target) -> list[Address]:
    """The target's addresses (its literal, or a DNS lookup); OSError if it does not resolve."""
    if target.literal is not None:
        return [target.literal]
    return _unique(socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))


async def resolve_async(target: Target) -> list[Address]:
    if target.literal is not None:
        return [target.literal]
    loop = asyncio.get_running_loop()
    return _unique(await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))


def pick_address(allow: AllowList, target: Target, addresses: list[Address]) -> Address | None:
    """The first address the list admits for this target, or None."""
    named = target.literal is None and allow.names_host(target.host)
    normalised = (_address(str(a)) or a for a in addresses)
    return next((a for a in normalised if allow.admits(a, named=named)), None)


def _refused(url: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"webhook url {url!r} is not allowed: {why}",
                          code="webhook_url_not_allowed")


def check_new_target(allow: AllowList, url: str) -> Target:
    """The URL of a new subscription, checked against the allow-list; 422 if refused."""
    target = parse_target(url)
    if allow.empty:
        raise _refused(url, f"no webhook target is allowed until the operator sets {SETTING}")
    named = target.literal is None and allow.names_host(target.host)
    try:
        addresses = resolve(target)
    except (OSError, UnicodeError):  # no such name; a name the IDNA codec refuses
        if named:
            return target  # listed; checked again, resolved, before every attempt
        raise _refused(url, f"{target.host} is not in {SETTING} and does not resolve") from None
    if pick_address(allow, target, addresses) is None:
        shown = ", ".join(str(a) for a in addresses)
        why = (f"{target.host} resolves to {shown}, which {SETTING} does not allow (a listed "
               "name may point to public addresses; private and loopback ones need their CIDR "
               "listed)" if named else f"{target.host} is not in {SETTING}"
               if target.literal is not None else
               f"{target.host} ({shown}) is not in {SETTING}")
        raise _refused(url, why)
    return target
