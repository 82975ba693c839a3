"""What one page adds to the Content-Security-Policy of settings.CONTENT_SECURITY_POLICY."""

from urllib.parse import urlsplit

from csp.decorators import csp_update


def origin(url: str) -> str | None:
    """scheme://host[:port] of an absolute URL; None for anything else."""
    parts = urlsplit(url or "")
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def allow(response, directives: dict[str, list[str]]):
    """The response, whose policy also allows these sources (None and empty ones are left
    out): django-csp's csp_update, for sources only known once the view has run."""
    directives = {name: sorted({s for s in sources if s}) for name, sources in directives.items()}
    directives = {name: sources for name, sources in directives.items() if sources}
    if not directives:
        return response
    return csp_update(directives)(lambda: response)()
