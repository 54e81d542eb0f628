"""What keeps ``assetflow ui`` safe by default: loopback only, Host checks, a token, CSRF.

- The server binds 127.0.0.1; another address needs a token, since anyone who can reach
  the port could otherwise read the project's lineage and code.
- Every request's ``Host`` header must name this server: a page on another site that
  re-points its own DNS name at 127.0.0.1 (DNS rebinding) is refused.
- With a token, a request carries it as ``Authorization: Bearer``, as the cookie the
  page gets from ``/?token=...``, or not at all (401).
- Launching a run (only with ``--allow-run``) is a POST that must carry the page's CSRF
  token in ``X-CSRF-Token`` and, when the browser sends one, a same-origin ``Origin``
  (same scheme, host and port).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_COOKIE = "assetflow_token"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind_host: str, extra: Iterable[str], token: str | None) -> set[str] | None:
    """Host header values to accept (lower case, no port); None accepts any, which only a token allows."""
    extra = {h.lower() for h in extra}
    if "*" in extra:
        return None
    hosts = {*LOOPBACK_NAMES, *extra}
    wildcard = bind_host in ("0.0.0.0", "::", "")
    if wildcard and token and not extra:
        return None  # reachable under any of the machine's names; the token is the guard
    if not wildcard:
        hosts.add(bind_host.lower())
    return hosts


_HOST = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._~!$&'()*+,;=%-]+))(?::(?P<port>[0-9]{1,5}))?")


def parse_host(header: str) -> tuple[str, int | None] | None:
    """A Host header (RFC 9110: ``host [":" port]``) as (host, port), or None if it is not one.

    Strict on purpose: ``[::1]attacker.example`` or ``a:b:c`` are refused, not read as
    the part that happens to look local.
    """
    found = _HOST.fullmatch(header.strip().lower())
    if found is None:
        return None
    host = found["ip6"] if found["ip6"] is not None else found["name"]
    if found["ip6"] is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    port = int(found["port"]) if found["port"] else None
    if port is not None and port > 65535:
        return None
    return host, port


def host_of(header: str) -> str:
    """The host part of a Host header (``[::1]:8080`` -> ``::1``), or "" if it is not a valid one."""
    parsed = parse_host(header)
    return "" if parsed is None else parsed[0]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, scheme: str, host_header: str) -> bool:
    """Whether an ``Origin`` header names this server: same scheme, host and port (RFC 6454)."""
    origin_scheme, sep, rest = origin.strip().lower().partition("://")
    here, there = parse_host(host_header), parse_host(rest) if sep and "/" not in rest else None
    if here is None or there is None or origin_scheme != scheme.lower():
        return False
    default = _DEFAULT_PORTS.get(origin_scheme)
    return here[0] == there[0] and (here[1] or default) == (there[1] or default)


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Guard:
    """ASGI middleware: Host check, token check, and headers that keep the page in its own origin."""

    def __init__(self, app: ASGIApp, hosts: set[str] | None, token: str | None) -> None:
        self.app = app
        self.hosts = hosts
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        request = Request(scope)
        response = self._refusal(request)
        if response is None:
            await self.app(scope, receive, _with_headers(send))
        else:
            await response(scope, receive, _with_headers(send))

    def _refusal(self, request: Request) -> Response | None:
        from starlette.responses import PlainTextResponse, RedirectResponse

        header = request.headers.get("host", "")
        host = host_of(header)
        if not host:
            return PlainTextResponse(f"Malformed Host header {header!r}: expected a host name or address, "
                                     f"optionally with ':PORT'.", status_code=400)
        if self.hosts is not None and host not in self.hosts:
            return PlainTextResponse(
                f"Host {host!r} is not this server's. If you reach it under that name on purpose, restart with "
                f"`assetflow ui --allowed-host {host}`.", status_code=400)
        if self.token is None:
            return None
        query_token = request.query_params.get("token")
        if query_token is not None and same_token(query_token, self.token):
            # The link with ?token= logs the browser in; the token then travels as a cookie only.
            response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
            return response
        bearer = request.headers.get("authorization", "")
        given = bearer[7:] if bearer.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE)
        if not same_token(given, self.token):
            return PlainTextResponse("This server needs its token: open the link `assetflow ui` printed "
                                     "(…/?token=...), or send `Authorization: Bearer <token>`.", status_code=401)
        return None


_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _with_headers(send: Send) -> Send:
    async def sender(message: dict) -> None:  # type: ignore[type-arg]
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            message["headers"] = [*message["headers"], *_HEADERS]
        await send(message)

    return sender
