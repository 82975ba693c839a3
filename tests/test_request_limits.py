"""A request body over REQUEST_BODY_MAX_BYTES is refused with 413 before it is read
(core.middleware); the largest upload the portal takes still fits."""

import http.client
import io
import socket
import time
from datetime import UTC, datetime

import pytest
import time_machine
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from refunds.models import RefundEvidence, RefundRequest
from tests.factories import owner_of

TWO_GB = 2**31
WEDNESDAY = datetime(2026, 3, 4, 15, tzinfo=UTC)


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError("the body was read")


def test_the_default_limit_is_the_largest_upload_and_a_margin(settings):
    files = settings.REFUND_EVIDENCE_MAX_FILES * settings.REFUND_EVIDENCE_MAX_BYTES
    assert files < settings.REQUEST_BODY_MAX_BYTES <= files + 4 * 2**20


def test_a_page_declaring_2_gb_is_refused_before_its_body_is_read(client):
    response = client.post(
        "/settings/billing/",
        **{
            "CONTENT_LENGTH": str(TWO_GB),
            "CONTENT_TYPE": MULTIPART_CONTENT,
            "wsgi.input": Unreadable(),
        },
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "This request is larger than 28.5 MB, the most the portal accepts." in response.text
    assert "send fewer or smaller files" in response.text


def test_the_api_declaring_2_gb_is_refused_with_a_detail(client):
    response = client.post(
        "/api/v1/refund-requests/",
        **{
            "CONTENT_LENGTH": str(TWO_GB),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": Unreadable(),
        },
    )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "This request is larger than 28.5 MB, the most the portal accepts."
    }


def _chunked(client, path, stream, **extra):
    """A chunked request as gunicorn hands it on: decoded, no Content-Length."""
    return client.post(
        path,
        **{
            "CONTENT_LENGTH": "",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": stream,
            "wsgi.input_terminated": True,
            **extra,
        },
    )


def test_a_chunked_body_over_the_limit_is_refused_after_one_byte_too_many(client, settings):
    settings.REQUEST_BODY_MAX_BYTES = 100_000
    stream = io.BytesIO(b"x" * 10_000_000)
    response = _chunked(client, "/api/v1/refund-requests/", stream, CONTENT_TYPE="application/json")
    assert response.status_code == 413
    assert response.json()["detail"].startswith("This request is larger than 0.1 MB")
    assert stream.tell() == 100_001


@pytest.fixture
def refund_form(client, paid_order, settings, tmp_path):
    """post(files, limit=None): the owner sends the refund form with these evidence files,
    encoded as a browser would; returns (response, size of the body)."""
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order()
    client.force_login(owner_of(account))
    url = reverse("refund_request_new", args=[order.pk])
    credits = order.lines.order_by("pk").first()

    def post(files, *, chunked=False):
        body = encode_multipart(
            BOUNDARY,
            {
                "account_id": account.pk,
                "lines": [credits.pk],
                "reason": "no_longer_needed",
                "payout_method": "credit",
                "action": "send",
                "evidence": files,
            },
        )
        with time_machine.travel(WEDNESDAY, tick=False):
            if chunked:
                response = _chunked(client, url, io.BytesIO(body), CONTENT_TYPE=MULTIPART_CONTENT)
            else:
                response = client.generic("POST", url, body, content_type=MULTIPART_CONTENT)
        return response, len(body)

    return post


def _pdf(name, size):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, b"%PDF-1.4\n" + b"0" * (size - 9), "application/pdf")


@pytest.mark.django_db
def test_the_largest_refund_form_the_portal_takes_is_accepted(refund_form, settings):
    most = settings.REFUND_EVIDENCE_MAX_BYTES
    files = [_pdf(f"scan-{n}.pdf", most) for n in range(settings.REFUND_EVIDENCE_MAX_FILES)]
    response, size = refund_form(files)
    assert size > settings.REFUND_EVIDENCE_MAX_FILES * most
    assert response.status_code == 302, response.content[:500]
    request = RefundRequest.objects.get()
    assert RefundEvidence.objects.filter(request=request).count() == len(files)


@pytest.mark.django_db
def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not(refund_form, settings):
    _response, size = refund_form([_pdf("scan.pdf", 1000)])
    RefundRequest.objects.all().delete()
    settings.REQUEST_BODY_MAX_BYTES = size - 1
    refused, _ = refund_form([_pdf("scan.pdf", 1000)])
    assert refused.status_code == 413 and not RefundRequest.objects.exists()
    settings.REQUEST_BODY_MAX_BYTES = size
    accepted, _ = refund_form([_pdf("scan.pdf", 1000)])
    assert accepted.status_code == 302
    assert RefundEvidence.objects.get().file.size == 1000


@pytest.mark.django_db
def test_a_chunked_body_within_the_limit_reaches_the_form(refund_form, settings):
    response, size = refund_form([_pdf("scan.pdf", 200_000)], chunked=True)
    assert response.status_code == 302, response.content[:500]
    assert RefundEvidence.objects.get().file.size == 200_000
    settings.REQUEST_BODY_MAX_BYTES = size - 1
    refused, _ = refund_form([_pdf("scan.pdf", 200_000)], chunked=True)
    assert refused.status_code == 413


def raw_post(url, path, headers: dict, timeout=10.0):
    """POST the request line and headers to the server at `url`, no body; returns
    (status, headers, body) and the seconds until the answer's head arrived."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        took = time.monotonic() - started
        return answer.status, answer.headers, answer.read(), took


def test_a_live_server_answers_a_2_gb_declaration_at_once(live_server):
    for path, kind in (("/settings/billing/", "text/html"), ("/api/v1/refund-requests/", "json")):
        status, headers, body, took = raw_post(
            live_server.url,
            path,
            {"Content-Type": "application/json", "Content-Length": TWO_GB},
        )
        assert status == 413, body[:300]
        assert kind in headers["Content-Type"] and b"28.5 MB" in body
        assert took < 2, f"the 413 took {took:.1f} s: the server waited for the body"
