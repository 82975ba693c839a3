"""The server-error page. A database that cannot be reached (PostgreSQL down, its
connections used up) answers 503 with Retry-After, as a page or as JSON under /api/,
instead of a 500; nothing here touches the database.

Django turns an exception raised anywhere (a view, a middleware) into this handler's
response, which is why this is the handler rather than a middleware: an outer
middleware never sees an exception raised by an inner one."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.defaults import server_error as django_server_error

RETRY_AFTER_SECONDS = 30
UNAVAILABLE = "The service is briefly unavailable. Please try again in a minute."


def server_error(request, template_name="500.html"):
    exc = sys.exc_info()[1]
    if not isinstance(exc, OperationalError | InterfaceError):
        return django_server_error(request, template_name)
    # Django has logged the error with its traceback (django.request).
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": UNAVAILABLE}, status=503)
    else:
        # Rendered without the request: context processors would query the database.
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
