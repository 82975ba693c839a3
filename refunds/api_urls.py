from django.urls import re_path

from . import api

urlpatterns = [
    # The issue names it without a trailing slash; both answer.
    re_path(r"^refunds/quote/?$", api.RefundQuoteView.as_view(), name="api_refund_quote"),
]
