"""The client address of the request being served, for audit rows.

Set by `RequestContextMiddleware`; empty in jobs and commands.
"""

from contextvars import ContextVar

from django.conf import settings

client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)


def ip_from_request(request) -> str | None:
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None
