"""Refuse a request body larger than REQUEST_BODY_MAX_BYTES with 413, before it is read.

A declared body (Content-Length) is judged by its declaration alone, so a request that
announces 2 GB is answered at once and never holds a worker while it uploads. A chunked
body declares nothing: where the server has already decoded it (`wsgi.input_terminated`,
as gunicorn does), it is read here up to one byte past the limit; larger, it is refused;
within the limit, it is handed on to Django as if it had been declared, since Django
itself reads only declared bodies.
"""

import tempfile

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse
from django.shortcuts import render

READ_SIZE = 64 * 1024


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.REQUEST_BODY_MAX_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # as Django reads it: no body
        if declared > limit:
            return too_large(request, limit)
        if not declared and _undeclared_body(request):
            body, size = _read_at_most(request.environ["wsgi.input"], limit + 1)
            if size > limit:
                body.close()
                return too_large(request, limit)
            request.META["CONTENT_LENGTH"] = str(size)
            # WSGIRequest took an empty stream for the missing Content-Length.
            request._stream = LimitedStream(body, size)
        return self.get_response(request)


def _undeclared_body(request) -> bool:
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked and bool(request.environ.get("wsgi.input_terminated"))


def _read_at_most(stream, most: int):
    """(file, size): at most `most` bytes of the stream, in memory up to Django's
    FILE_UPLOAD_MAX_MEMORY_SIZE and on disk beyond it."""
    body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
    size = 0
    while size < most:
        chunk = stream.read(min(READ_SIZE, most - size))
        if not chunk:
            break
        body.write(chunk)
        size += len(chunk)
    body.seek(0)
    return body, size


def too_large(request, limit: int):
    megabytes = f"{limit / 2**20:.1f}".removesuffix(".0")
    message = f"This request is larger than {megabytes} MB, the most the portal accepts."
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=413)
    else:
        response = render(request, "413.html", {"message": message}, status=413)
    # Sent before CommonMiddleware would add it: the client knows where the answer ends
    # even when the server keeps the connection open to read (and drop) the body.
    response["Content-Length"] = str(len(response.content))
    return response
