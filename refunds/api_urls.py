from django.urls import path, re_path

from . import api, api_requests

urlpatterns = [
    # The issue names it without a trailing slash; both answer.
    re_path(r"^refunds/quote/?$", api.RefundQuoteView.as_view(), name="api_refund_quote"),
    path(
        "accounts/<id:account_id>/refund-requests/",
        api_requests.RefundRequestListView.as_view(),
        name="api_refund_requests",
    ),
    path(
        "accounts/<id:account_id>/refund-requests/<str:number>/",
        api_requests.RefundRequestDetailView.as_view(),
        name="api_refund_request",
    ),
    path(
        "accounts/<id:account_id>/refund-requests/<str:number>/withdraw/",
        api_requests.RefundRequestWithdrawView.as_view(),
        name="api_refund_request_withdraw",
    ),
    path(
        "accounts/<id:account_id>/refund-requests/<str:number>/messages/",
        api_requests.RefundRequestMessageView.as_view(),
        name="api_refund_request_messages",
    ),
    # The issue's own path: the account is the purchases' own.
    path(
        "refund-requests/",
        api_requests.RefundRequestSubmitView.as_view(),
        name="api_refund_request_submit",
    ),
]
