"""The client address of the request being served, for audit rows.

Set by `RequestContextMiddleware`; empty in jobs and commands.
"""

import ipaddress
from contextvars import ContextVar

from django.conf import settings

client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def ip_from_request(request) -> str | None:
    """The address the nearest trusted proxy saw; never a value the client chose.

    Each proxy appends the address it received from, so with N trusted proxies
    the client is the N-th entry from the right of X-Forwarded-For.
    """
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            ip = _valid_ip(hops[-proxies])
            if ip:
                return ip
    return _valid_ip(request.META.get("REMOTE_ADDR"))
