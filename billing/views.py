"""The Billing tab of Account Settings: seats and the credit ledger so far."""

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from accounts import selectors
from accounts.views import member_view

from . import selectors as billing_selectors


@member_view(need="billing")
def billing_overview(request):
    account = request.portal.account
    return render(
        request,
        "billing/overview.html",
        {
            "tab": "billing",
            "account": account,
            "usage": selectors.seat_usage(account=account, now=timezone.now()),
            "seat_holders": selectors.seat_holder_list(account=account),
            "billing_email": settings.VENDOR_BILLING_EMAIL,
            "ledger": billing_selectors.ledger_view(account=account, currency=account.currency),
        },
    )
