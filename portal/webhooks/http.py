"""Outbound HTTP for webhook deliveries, safe against server-side request forgery.

A webhook URL is chosen by a user, and the portal then makes requests to it from inside
the network. So each delivery:

- resolves the host once, at delivery time, and refuses the whole destination if any of its
  addresses is loopback, private, link-local, multicast, reserved, unspecified, shared
  (100.64/10) or otherwise not global, checking the IPv4 address carried inside IPv6
  forms too (IPv4-mapped, 6to4, Teredo, NAT64);
- always refuses the cloud metadata addresses (169.254.169.254, fd00:ec2::254,
  100.100.100.200), even inside an allowed network;
- connects to the address it checked (urllib3 pool on the IP, TLS SNI and certificate check
  against the host name, Host header set by hand), so no second DNS lookup can swap in
  another address (DNS rebinding);
- follows no redirect, uses no proxy from the environment, and has short timeouts;
- speaks HTTPS only, except to addresses inside settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS,
  which are allowed over HTTP as well, even if private or loopback.

`url_problem` checks what can be checked without DNS when a webhook is created or changed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import urllib3
from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Enough of a response to show what the receiver said; the rest is not read.
RESPONSE_BODY_LIMIT = 64 * 1024
USER_AGENT = "mlportal-webhooks/1"
URL_MAX_LENGTH = 2048


class Refused(Exception):
    """The destination is not allowed; the request was not sent (and must not be retried)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, without brackets for IPv6
    port: int
    path: str  # request target: path and query

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class HttpResult:
    """What came back: a status (None when no response arrived) or an error."""

    status: int | None
    body: str
    error: str
    retryable: bool
    duration_ms: int
    location: str = ""


# ---------------------------------------------------------------- the rules


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS]


def _embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: Address) -> str | None:
    """Why `ip` is not a public address, or None if it is."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


def address_problem(ip: Address, scheme: str) -> str | None:
    """Why a delivery may not go to `ip` over `scheme`, or None if it may."""
    embedded = _embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES or embedded in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if any(ip in network for network in allowed_networks()):
        return None
    if scheme != "https":
        return f"{ip} is not in PORTAL_WEBHOOK_ALLOWED_NETWORKS, and other destinations are reached over https only"
    for candidate in (embedded, ip):  # the IPv4 address inside first: it says more
        if candidate is not None and (kind := _kind(candidate)) is not None:
            return f"{ip} is a {kind} address"
    return None


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL (checked without DNS), or None."""
    if not isinstance(url, str) or not url.strip():
        return "Webhook URL must be a non-empty string."
    if len(url) > URL_MAX_LENGTH:
        return f"Webhook URL must be at most {URL_MAX_LENGTH} characters long."
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "Webhook URL must not contain whitespace or control characters."
    try:
        target = parse(url)
    except ValueError as exc:
        return str(exc)
    if target.scheme == "http" and not allowed_networks():
        return (
            f"Invalid webhook URL {url!r}: use https (http is allowed only to PORTAL_WEBHOOK_ALLOWED_NETWORKS, "
            "which is empty)."
        )
    try:
        literal = ipaddress.ip_address(target.host)
    except ValueError:
        return None  # a host name: its addresses are checked at each delivery
    problem = address_problem(literal, target.scheme)
    return f"Invalid webhook URL {url!r}: {problem}." if problem else None


def parse(url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"Invalid webhook URL {url!r}: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"Invalid webhook URL scheme {parts.scheme!r}: use https.")
    if not parts.hostname:
        raise ValueError(f"Webhook URL must include a host name: {url!r}.")
    if parts.username is not None or parts.password is not None:
        raise ValueError("Webhook URL must not contain credentials: use the webhook's secret to verify deliveries.")
    host = parts.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # the Host header, SNI and DNS want ASCII
        except UnicodeError:
            raise ValueError(f"Invalid host name in webhook URL {url!r}.") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii():
        path = quote(path, safe="/?:@!$&'()*+,;=%-._~")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


# ---------------------------------------------------------------- sending


def resolve(host: str, port: int) -> list[str]:
    """Every address of `host`, in the resolver's order (tests replace this function)."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = sockaddr[0].split("%")[0]  # an IPv6 scope id is not part of the address
        if address not in found:
            found.append(address)
    return found


def checked_address(target: Target) -> str:
    """The address to connect to: the first one of the host's, if all of them are allowed."""
    try:
        addresses = [ipaddress.ip_address(a) for a in resolve(target.host, target.port)]
    except (OSError, UnicodeError) as exc:
        raise LookupError(f"Could not resolve {target.host!r}: {exc}") from None
    if not addresses:
        raise LookupError(f"{target.host!r} has no address")
    for ip in addresses:
        problem = address_problem(ip, target.scheme)
        if problem:
            raise Refused(f"Refused to deliver to {target.host!r}: {problem}.")
    return str(addresses[0])


def _pool(target: Target, ip: str) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(
        connect=settings.PORTAL_WEBHOOK_CONNECT_TIMEOUT, read=settings.PORTAL_WEBHOOK_READ_TIMEOUT
    )
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            ip,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            assert_hostname=target.host,
            server_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(ip, target.port, timeout=timeout, retries=False, maxsize=1)


def post(url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
    """POST `body` to `url` under the rules above. Never raises for a network problem: the
    result says what happened and whether trying again later may help."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = parse(url)
        ip = checked_address(target)
    except (ValueError, Refused) as exc:
        return HttpResult(None, "", str(exc), retryable=False, duration_ms=elapsed())
    except LookupError as exc:
        return HttpResult(None, "", str(exc.args[0]), retryable=True, duration_ms=elapsed())
    pool = _pool(target, ip)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header, "User-Agent": USER_AGENT},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
            release_conn=False,
        )
        try:
            text = response.read(RESPONSE_BODY_LIMIT).decode("utf-8", "replace")
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        return HttpResult(None, "", f"{type(exc).__name__}: {exc}", retryable=True, duration_ms=elapsed())
    finally:
        pool.close()
    status = response.status
    location = response.headers.get("Location", "")
    if 300 <= status < 400:
        error = f"The receiver answered {status} (redirect to {location!r}); redirects are not followed."
        return HttpResult(status, text, error, retryable=False, duration_ms=elapsed(), location=location)
    if status >= 400:
        retryable = status in (408, 429) or status >= 500
        return HttpResult(status, text, f"The receiver answered {status}.", retryable, elapsed())
    return HttpResult(status, text, "", retryable=False, duration_ms=elapsed())
