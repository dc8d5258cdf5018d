"""Outgoing requests to addresses a customer chose: https only, never into the private network.

A URL is checked when it is saved and again on every post: the host is resolved once, every
address it resolves to must be public, and the connection goes to the address that was
checked (so a DNS answer that changes in between cannot redirect it), while the Host header,
TLS SNI and certificate check keep the name. `allow_private` (KINDLY_OUTBOUND_ALLOW_PRIVATE,
development only) lets http and private addresses through for local receivers.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class Refused(ValueError):
    """A destination Kindly does not send to, with the reason."""


def refusal(address: Address) -> str | None:
    """Why an address is not a public destination, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None
        )
        if embedded is not None:
            return refusal(embedded)
    checks = (
        (address in METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CGNAT, "a CGNAT address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def check_url(url: object, *, allow_private: bool = False) -> Address:
    """The checked address a URL may be sent to; `Refused` names what is wrong with it."""
    try:
        parsed = urlsplit(url) if isinstance(url, str) else None
        port = parsed.port if parsed else None
    except ValueError:  # a bracket left open, a port that is no number from 0 to 65535
        parsed = port = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise Refused("url: an absolute https URL")
    if parsed.scheme != "https" and not allow_private:
        raise Refused("url: must use https (events carry personal data)")
    if parsed.username or parsed.password:
        raise Refused("url: must not carry a user name or password")
    return _resolve(parsed.hostname, port or (443 if parsed.scheme == "https" else 80),
                    allow_private)  # fmt: skip


def _resolve(host: str, port: int, allow_private: bool) -> Address:
    """Resolve once; the first address, when every answer is a public one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError) as exc:
        raise Refused(f"url: the host {host!r} does not resolve") from exc
    # a scope id (fe80::1%eth0) is not part of the address itself
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise Refused(f"url: the host {host!r} does not resolve")
    for address in addresses:
        reason = None if allow_private else refusal(address)
        if reason:
            raise Refused(f"url: the host {host!r} is {reason} ({address}); only public ones")
    return addresses[0]


class PinnedAdapter(HTTPAdapter):
    """Connects to one checked address; the name stays in Host, SNI and the certificate check."""

    def __init__(self, address: Address, hostname: str) -> None:
        self.address, self.hostname = address, hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pool for the pinned address, verifying TLS against the name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params["host"] = str(self.address)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.hostname
        return host_params, pool_kwargs

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        """Send directly: a proxy would resolve the name again, past the check."""
        kwargs["proxies"] = {}
        return super().send(request, *args, **kwargs)


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool
) -> requests.Response:
    """POST to a checked URL, connecting only to the address that was checked."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)  # an international name in its ASCII (IDNA) form
    url = prepared.url or url
    address = check_url(url, allow_private=allow_private)
    parsed = urlsplit(url)
    with requests.Session() as session:
        session.mount(f"{parsed.scheme}://", PinnedAdapter(address, parsed.hostname or ""))
        return session.post(
            url, data=body, headers={**headers, "Host": parsed.netloc.rsplit("@", 1)[-1]},
            timeout=timeout, allow_redirects=False,
        )  # fmt: skip
