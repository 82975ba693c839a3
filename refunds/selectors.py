from django.db.models import Prefetch
from django.http import Http404

from accounts.models import Account

from .models import RefundLine, RefundRequest


def refund_request_list(*, account: Account):
    return (
        RefundRequest.objects.filter(account=account)
        .select_related("order")
        .order_by("-received_at", "-id")
    )


def refund_request_get(*, account: Account, number: str) -> RefundRequest:
    """One of the account's requests, by number; another account's answers 404."""
    request = (
        RefundRequest.objects.filter(account=account, number=number)
        .select_related("order", "requested_by")
        .prefetch_related(
            Prefetch("lines", queryset=RefundLine.objects.select_related("order_line")),
            "messages__author",
            "evidence",
            "payouts",
        )
        .first()
    )
    if request is None:
        raise Http404("No such refund request.")
    return request
