"""Signing and sending events to a developer's endpoint.

Each request carries `Portal-Signature: t=<unix time>,v1=<hex>`, where the hex is the
HMAC-SHA256, keyed with the app's webhook secret, of `<t>.<raw body>`. To verify: split
the header, recompute the HMAC over the same bytes, compare in constant time, and refuse
a timestamp more than five minutes old (a replay). `Portal-Event-Id` is the event's id:
the same id twice is one event (a retry or a replay from the console).
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

SIGNATURE_HEADER = "Portal-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None) -> bool:
    """The recipe a developer follows, here for the tests and the docs."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def post(
    url: str, *, payload: dict, secret: str, event_id: str, timeout: float = 10
) -> tuple[int, str]:
    """POST the event; (status, the first 2,000 characters of the answer). A network
    error is status 0 with the error as the answer."""
    body = body_of(payload)
    if not url.lower().startswith(("https://", "http://")):
        return 0, "The endpoint is not an http(s) URL."
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "VendorPortal-Webhooks/1",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            "Portal-Event-Id": event_id,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, str(exc)[:2000]
