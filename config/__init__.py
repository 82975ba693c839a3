import sys

# stripe picks its async HTTP client when it is imported, and takes aiohttp when it can
# import it: installed here only for the test suite's fake Stripe (localstripe), aiohttp
# and the two TLS contexts it builds cost every process ~0.4 s of CPU at start-up. The
# portal calls Stripe synchronously; without aiohttp stripe's async client says so if
# ever used. aiohttp itself stays importable for whatever else needs it.
if "stripe" not in sys.modules and "aiohttp" not in sys.modules:
    sys.modules["aiohttp"] = None
    try:
        import stripe  # noqa: F401
    finally:
        del sys.modules["aiohttp"]

from .celery import app as celery_app

__all__ = ("celery_app",)
