"""Fixtures for tests that talk to Stripe: localstripe, a fake Stripe API on loopback.

localstripe is a dev dependency. Without it (or if it does not start) the tests
that use it are skipped, unless CI=true or REQUIRE_STRIPE=1, where that is a failure.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import stripe

LAUNCHER = Path(__file__).resolve().parent / "localstripe_server.py"
SECRET_KEY = "sk_test_localstripe000000000000000000"  # dj-stripe wants 24+ characters
WEBHOOK_SECRET = "whsec_test_portal"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_localstripe():
    """(process, url, None) once it answers, or (None, None, why not)."""
    try:
        import localstripe  # noqa: F401
    except ImportError:
        return None, None, "localstripe is not installed (a dev dependency: make install)."
    port = _free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115  (open as long as the server runs)
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            return None, None, f"localstripe exited: {log.read().decode()[-500:]}"
        try:
            with urllib.request.urlopen(f"{url}/js.stripe.com/v3/", timeout=1):  # noqa: S310
                return process, url, None
        except OSError:
            time.sleep(0.1)
    process.kill()
    return None, None, "localstripe did not answer within 20 seconds."


@pytest.fixture(scope="session")
def localstripe_url():
    process, url, reason = _start_localstripe()
    if reason:
        if os.environ.get("CI") == "true" or os.environ.get("REQUIRE_STRIPE") == "1":
            pytest.fail(f"CI=true or REQUIRE_STRIPE=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def stripe_on(localstripe_url, settings, monkeypatch):
    settings.BILLING_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_portal"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_JS_URL = f"{localstripe_url}/js.stripe.com/v3/"
    monkeypatch.setattr(stripe, "api_base", localstripe_url)
    return localstripe_url
