"""The portal's URLs and the bare view the benches measure pages against: the cost of
gunicorn, the middleware and a response, with no query and no template."""

from django.http import HttpResponse
from django.urls import path

from .urls import urlpatterns as portal


def bare(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare, name="bench_bare"), *portal]
